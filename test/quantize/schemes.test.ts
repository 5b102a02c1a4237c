/**
 * The schemes beyond static int8: linear:<b> and log2 against the seed's formulas (hand-computed
 * values, then the weights onnxruntime computes from the rewritten model), fp16, weight-int8 and
 * weight-int4 (MatMulNBits' packing checked against a TypeScript dequantization), each model
 * running on onnxruntime close to its float original, and the CLI's refusals.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { saveModel } from '../../src/io/files.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { assertValid } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { toFloat16 } from '../../src/quantize/fp16.js';
import { findScheme, quantizeModel } from '../../src/quantize/index.js';
import { linearDequantize, linearGrid, linearQuantize, linearQuantizeTensor, parseLinearBits } from '../../src/quantize/linear.js';
import { log2Expand, log2Quantize, log2QuantizeTensor, log2Scale } from '../../src/quantize/log2.js';
import { int4Block, int4Code, quantizeRowBlocks } from '../../src/quantize/weight-only.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { cli, listFiles, tmpDir } from '../helpers.js';
import { calibData, ops, residualNet, uniform } from './helpers.js';

const backend = nodeBackend();
const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);

async function run(m: Model, feeds: Record<string, Tensor>): Promise<Float32Array> {
  const s = await backend.createSession(m);
  const out = await s.run(feeds);
  await s.release();
  return Object.values(out)[0].toFloat32();
}

function sqnrDb(ref: Float32Array, got: Float32Array): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < ref.length; i++) {
    signal += ref[i] * ref[i];
    noise += (ref[i] - got[i]) ** 2;
  }
  return noise === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(signal / noise);
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/**
 * y = x · W with x fed as the identity matrix: the output is the weight the model computes, so
 * the rewritten model's weights can be read back from onnxruntime. W is [k, n].
 */
function weightProbe(w: Tensor): { model: Model; feeds: Record<string, Tensor> } {
  const [k] = w.dims;
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', [k, k]);
  b.output(b.op('MatMul', [x, b.constant('w', w)], {}, { name: 'mm' }), 'y');
  const eye = new Float32Array(k * k);
  for (let i = 0; i < k; i++) eye[i * k + i] = 1;
  return { model: b.build(), feeds: { x: Tensor.from('float32', [k, k], eye) } };
}

/** x [N, k] → MatMul(W [k, n]) → Add(bias) → y, or the same as one Gemm. */
function denseNet(k: number, n: number, gemm: boolean, seed = 3): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', k]);
  const w = b.constant('w', uniform([k, n], 0.5, seed));
  const bias = b.constant('bias', uniform([n], 0.5, seed + 1));
  const y = gemm ? b.op('Gemm', [x, w, bias], {}, { name: 'fc' }) : b.op('Add', [b.op('MatMul', [x, w], {}, { name: 'mm' }), bias]);
  b.output(y, 'y');
  return b.build();
}

describe('linear:<b>: the seed formula q = round((r − z_r)/(z_p − z_r)·(2^b − 1))', () => {
  it('b = 2, per tensor, by hand: z_r −0.3, z_p 0.9, scale 0.4, zero point round(0.75) = 1, δ = 0.1', () => {
    const g = linearGrid(-0.3, 0.9, 2);
    assert.equal(g.scale, Math.fround(0.4));
    assert.equal(g.zeroPoint, 1);
    const r = [-0.3, 0, 0.5, 0.9];
    assert.deepEqual(
      r.map((x) => linearQuantize(x, g)),
      [0, 1, 2, 3],
    );
    // The model's weight is the formula's inverse z_r + q·scale: −0.3, 0.1, 0.5, 0.9.
    close(
      [0, 1, 2, 3].map((q) => linearDequantize(q, g)),
      [-0.3, 0.1, 0.5, 0.9],
      1e-6,
      'r̂',
    );
  });

  it('b = 4, per tensor, by hand: scale 0.3, zero point 5', () => {
    const { q, grids } = linearQuantizeTensor(Float32Array.from([-1.5, -0.2, 0, 0.7, 3]), [5], undefined, 4);
    assert.equal(grids.length, 1);
    assert.equal(grids[0].scale, Math.fround(0.3));
    assert.equal(grids[0].zeroPoint, 5);
    // (r + 1.5)/0.3: 0, 4.33, 5, 7.33, 15.
    assert.deepEqual([...q], [0, 4, 5, 7, 15]);
  });

  it('b = 8, per tensor, by hand: scale 0.006, zero point 85; ties round to even', () => {
    const g = linearGrid(-0.51, 1.02, 8);
    assert.equal(g.zeroPoint, 85);
    assert.deepEqual(
      [-0.51, 0, 0.25, 1.02].map((x) => linearQuantize(x, g)),
      [0, 85, 127, 255],
    );
    // 2 bits over [−1, 2]: (r + 1)·1 = 0.5 and 2.5 are ties: to 0 and 2.
    const t = linearGrid(-1, 2, 2);
    assert.deepEqual(
      [-0.5, 1.5].map((x) => linearQuantize(x, t)),
      [0, 2],
    );
  });

  it('b = 4, per channel, by hand: each row its own range (widened to hold 0)', () => {
    const { q, grids } = linearQuantizeTensor(Float32Array.from([-1, 0, 2, 0.1, 0.4, 0.3]), [2, 3], 0, 4);
    assert.deepEqual(
      grids.map((g) => [g.lo, g.hi, g.zeroPoint]),
      [
        [-1, 2, 5],
        [0, Math.fround(0.4), 0],
      ],
    );
    // Row 0: (r + 1)/0.2 → 0, 5, 15. Row 1: r/(0.4/15) → 3.75, 15, 11.25.
    assert.deepEqual([...q], [0, 5, 15, 4, 15, 11]);
  });

  it('the model onnxruntime runs holds the codes and computes z_r + q·scale (b = 2, 4, 8; per tensor and per channel)', async () => {
    const w = uniform([16, 6], 0.8, 21);
    for (const bits of [2, 4, 8]) {
      for (const perChannel of [false, true]) {
        const { model, feeds } = weightProbe(w);
        const report = await quantizeModel(model, { scheme: `linear:${bits}`, perChannel, backend });
        assert.deepEqual(report.quantized, { MatMul: 1 });
        const codes = model.graph.initializers.find((v) => v.name === 'w_quantized')?.initializer;
        assert.equal(codes?.dtype, bits <= 4 ? 'uint4' : 'uint8');
        const { q, grids } = linearQuantizeTensor(w.toFloat32(), [16, 6], perChannel ? 1 : undefined, bits);
        assert.deepEqual(codes?.toNumbers(), [...q], 'stored codes are the formula q');
        const got = await run(model, feeds);
        const want = Array.from(q, (c, i) => linearDequantize(c, grids[perChannel ? i % 6 : 0]));
        close(got, want, 1e-6, `linear:${bits} ${perChannel ? 'per channel' : 'per tensor'}`);
        // And within one step of the original weights.
        const step = Math.max(...grids.map((g) => g.scale));
        close(got, w.toFloat32(), step * 0.5 + 1e-6, 'r̂ − r');
      }
    }
  });

  it('runs close to float; with --activations the inputs of Conv/Gemm get b-bit Q/DQ from calibration', async () => {
    const x = uniform([4, 3, 8, 8], 1, 9);
    const ref = await run(residualNet(), { x });
    const w8 = residualNet();
    await quantizeModel(w8, { scheme: 'linear:8', perChannel: true, backend });
    assert.ok(sqnrDb(ref, await run(w8, { x })) > 35);
    const a6 = residualNet();
    const r = await quantizeModel(a6, {
      scheme: 'linear:6',
      perChannel: true,
      activations: true,
      calib: calibData(16, [3, 8, 8]),
      backend,
    });
    assert.equal(r.calibration?.samples, 16);
    assert.equal(ops(a6).QuantizeLinear, 3);
    assert.equal(ops(a6).Clip, 3, 'QuantizeLinear saturates at 255: a Clip keeps 6 bits');
    const s = sqnrDb(ref, await run(a6, { x }));
    assert.ok(s > 20, `linear:6 with activations: SQNR ${s.toFixed(1)} dB`);
  });

  it('accepts 2…8 bits only, with one line', () => {
    assert.equal(parseLinearBits('2'), 2);
    assert.equal(parseLinearBits('8'), 8);
    for (const bad of ['1', '9', 'x', '4.5', '', '04x']) assert.throws(() => findScheme(`linear:${bad}`), /whole number from 2 to 8/);
    assert.throws(() => findScheme('linear'), /needs a parameter/);
  });
});

describe('log2: the seed formula q = round(log2(|r| + 1))·sign(r), on r/s', () => {
  it('by hand: s = max|r|/127, codes −7…7, r̂ = sign(q)·(2^|q| − 1)·s', () => {
    const s = log2Scale(1.27);
    assert.equal(s, Math.fround(0.01));
    const r = [-1.27, -0.01, 0, 0.02, 0.05, 0.3, 1.27];
    // |r|/s + 1 = 128, 2, 1, 3, 6, 31, 128 → log2 7, 1, 0, 1.58, 2.58, 4.95, 7.
    const q = r.map((x) => log2Quantize(x, s));
    assert.deepEqual(q, [-7, -1, 0, 2, 3, 5, 7]);
    close(
      q.map((c) => log2Expand(c, s)),
      [-1.27, -0.01, 0, 0.03, 0.07, 0.31, 1.27],
      1e-6,
      'r̂',
    );
    // Without the scale the formula sends small weights to 0: round(log2(1.3)) = 0.
    assert.equal(log2Quantize(0.3, 1), 0);
    // The inverse is exact where log2(|r| + 1) is an integer.
    for (let e = 0; e <= 7; e++) assert.equal(log2Expand(log2Quantize(2 ** e - 1, 1), 1), 2 ** e - 1);
  });

  it('the expansion subgraph onnxruntime runs gives exactly the TypeScript expansion (per tensor and per channel)', async () => {
    const w = uniform([12, 5], 0.6, 33);
    for (const perChannel of [false, true]) {
      const { model, feeds } = weightProbe(w);
      await quantizeModel(model, { scheme: 'log2', perChannel, backend });
      const codes = model.graph.initializers.find((v) => v.name === 'w_log2')?.initializer;
      assert.equal(codes?.dtype, 'int8');
      const { q, scales } = log2QuantizeTensor(w.toFloat32(), [12, 5], perChannel ? 1 : undefined);
      assert.deepEqual(codes?.toNumbers(), [...q]);
      assert.ok(q.every((c) => c >= -7 && c <= 7));
      const got = await run(model, feeds);
      const want = Float32Array.from(q, (c, i) => log2Expand(c, scales[perChannel ? i % 5 : 0]));
      assert.deepEqual(got, want, 'bit for bit');
    }
  });

  it('a log2 model runs close to float', async () => {
    const x = uniform([4, 3, 8, 8], 1, 9);
    const ref = await run(residualNet(), { x });
    const m = residualNet();
    await quantizeModel(m, { scheme: 'log2', perChannel: true, backend });
    assert.equal(ops(m).Pow, 3);
    const s = sqnrDb(ref, await run(m, { x }));
    assert.ok(s > 8, `log2: SQNR ${s.toFixed(1)} dB`);
  });
});

describe('fp16', () => {
  it('stores every float32 initializer as float16, keeps float32 inputs and outputs, and runs close to float', async () => {
    const x = uniform([4, 3, 8, 8], 1, 9);
    const ref = await run(residualNet(), { x });
    const m = residualNet();
    const r = await quantizeModel(m, { scheme: 'fp16', backend });
    assertValid(m, 'fp16', { registry: defaultRegistry() });
    const floats = m.graph.initializers.filter((v) => v.initializer?.dtype === 'float32' || v.initializer?.dtype === 'float16');
    assert.ok(floats.length >= 6);
    assert.ok(
      floats.every((v) => v.initializer?.dtype === 'float16'),
      floats.map((v) => `${v.name}:${v.initializer?.dtype}`).join(' '),
    );
    assert.ok(r.weightBytes.after <= r.weightBytes.before * 0.52);
    assert.deepEqual(
      [m.graph.inputs[0].type, m.graph.outputs[0].type].map((t) => t?.kind === 'tensor' && t.dtype),
      ['float32', 'float32'],
    );
    assert.equal(m.graph.outputs[0].name, 'y');
    assert.equal(ops(m).Cast, 2, 'one Cast after the input, one before the output');
    const s = sqnrDb(ref, await run(m, { x }));
    assert.ok(s > 50, `fp16: SQNR ${s.toFixed(1)} dB`);
  });

  it('without keepIoTypes the graph takes and gives float16; blocked ops stay float32 between Casts', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['N', 8]);
    const h = b.op('MatMul', [x, b.constant('w', uniform([8, 8], 0.5, 4))]);
    const e = b.op('Exp', [h], {}, { name: 'exp' });
    b.output(b.op('Add', [e, b.constant('c', uniform([8], 0.5, 5))]), 'y');
    const float = b.build();
    const xs = uniform([2, 8], 1, 6);
    const ref = await run(copy(float), { x: xs });
    const m = copy(float);
    const r = await quantizeModel(m, { scheme: 'fp16', keepIoTypes: false, fp16Block: ['Add'], backend });
    assert.deepEqual(
      r.float.map((f) => [f.op, f.reason]),
      [
        ['Exp', 'exp overflows float16 above 11'],
        ['Add', 'blocked (--fp16-block)'],
      ],
    );
    assert.deepEqual(r.quantized, { MatMul: 1 });
    const io = [m.graph.inputs[0], m.graph.outputs[0]].map((v) => (v.type?.kind === 'tensor' ? v.type.dtype : ''));
    assert.deepEqual(io, ['float16', 'float32'], 'the output comes from a float32 Add');
    const c = m.graph.initializers.find((v) => v.name === 'c')?.initializer;
    assert.equal(c?.dtype, 'float32', "the blocked Add's constant stays float32");
    const half = toFloat16(xs).tensor;
    const got = await run(m, { x: half });
    assert.ok(sqnrDb(ref, got) > 40);
  });

  it('clamps initializer values beyond float16 range', () => {
    const { tensor, clamped } = toFloat16(Tensor.from('float32', [3], [1e6, -1e6, 1]));
    assert.equal(clamped, 2);
    assert.deepEqual(tensor.toNumbers(), [65504, -65504, 1]);
  });
});

describe('weight-int8 and weight-int4', () => {
  it('weight-int8: int8 per-channel weights behind DequantizeLinear, float activations', async () => {
    const x = uniform([4, 3, 8, 8], 1, 9);
    const ref = await run(residualNet(), { x });
    const m = residualNet();
    const r = await quantizeModel(m, { scheme: 'weight-int8', backend });
    assert.deepEqual(r.quantized, { Conv: 2, Gemm: 1 });
    assert.equal(ops(m).DequantizeLinear, 3);
    assert.equal(ops(m).QuantizeLinear, undefined);
    const w1 = m.graph.initializers.find((v) => v.name === 'w1_quantized')?.initializer;
    assert.equal(w1?.dtype, 'int8');
    assert.ok(sqnrDb(ref, await run(m, { x })) > 35);
  });

  it('weight-int4 turns MatMul into MatMulNBits: packing, zero points and padding match a TypeScript dequantization', async () => {
    // K = 40 is not a multiple of the block: the last block is padded.
    const k = 40;
    const n = 6;
    const float = denseNet(k, n, false);
    const w = float.graph.initializers.find((v) => v.name === 'w')?.initializer as Tensor;
    const biasValue = float.graph.initializers.find((v) => v.name === 'bias');
    assert.ok(biasValue?.initializer);
    const bias = biasValue.initializer.toFloat32();
    const m = copy(float);
    const r = await quantizeModel(m, { scheme: 'weight-int4', blockSize: 16, backend });
    assert.equal(ops(m)['com.microsoft.MatMulNBits'], 1);
    assert.equal(ops(m).MatMul, undefined);
    assert.match(r.notes?.join(' ') ?? '', /MatMulNBits/);
    // The reference: blocks of 16 along K of each column of W, dequantized in TypeScript.
    const wf = w.toFloat32();
    const wt = new Float32Array(n * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) wt[j * k + i] = wf[i * n + j];
    const q = quantizeRowBlocks(wt, n, k, 16);
    const blocks = Math.ceil(k / 16);
    assert.ok(new Set(q.zeroPoints).size > 1, 'zero points differ between blocks');
    const deq = new Float32Array(n * k);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < k; i++) {
        const b = j * blocks + Math.floor(i / 16);
        deq[j * k + i] = (q.codes[j * k + i] - q.zeroPoints[b]) * q.scales[b];
      }
    }
    const xs = uniform([3, k], 1, 7);
    const xf = xs.toFloat32();
    const want = new Float32Array(3 * n);
    for (let a = 0; a < 3; a++) {
      for (let j = 0; j < n; j++) {
        let sum = bias[j];
        for (let i = 0; i < k; i++) sum += xf[a * k + i] * deq[j * k + i];
        want[a * n + j] = sum;
      }
    }
    close(await run(m, { x: xs }), want, 1e-4, 'MatMulNBits');
    assert.ok(sqnrDb(await run(float, { x: xs }), want) > 15);
  });

  it('weight-int4 turns a Gemm with bias into MatMulNBits with its bias, and blocks Conv weights with DequantizeLinear (opset 21)', async () => {
    const xs = uniform([3, 64], 1, 8);
    const gemm = denseNet(64, 10, true);
    const ref = await run(copy(gemm), { x: xs });
    await quantizeModel(gemm, { scheme: 'weight-int4', backend });
    assert.deepEqual(ops(gemm), { 'com.microsoft.MatMulNBits': 1 });
    assert.equal(gemm.graph.nodes[0].inputs.length, 6, 'bias is input 5');
    assert.ok(sqnrDb(ref, await run(gemm, { x: xs })) > 15);

    const x = uniform([4, 3, 8, 8], 1, 9);
    const convRef = await run(residualNet(), { x });
    const m = residualNet();
    const r = await quantizeModel(m, { scheme: 'weight-int4', backend });
    assert.deepEqual(r.quantized, { Conv: 2, Gemm: 1 });
    assert.equal(m.opset(''), 21);
    const dq = m.graph.nodes.filter((node) => node.opType === 'DequantizeLinear');
    assert.equal(dq.length, 2);
    assert.ok(dq.every((node) => node.int('block_size') === 32 && node.input(0)?.initializer?.dtype === 'uint4'));
    const s = sqnrDb(convRef, await run(m, { x }));
    assert.ok(s > 15, `weight-int4: SQNR ${s.toFixed(1)} dB`);
  });

  it('int4 blocks: the 16 levels span [min(w, 0), max(w, 0)]', () => {
    const values = [-0.3, 0.1, 1.2];
    const b = int4Block(values, 0, 3);
    assert.equal(b.scale, Math.fround(0.1));
    assert.equal(b.zeroPoint, 3);
    assert.deepEqual(
      values.map((v) => int4Code(v, b)),
      [0, 4, 15],
    );
    assert.throws(() => findScheme('weight-int4:8'), /takes no parameter/);
  });
});

describe('mobilize quantize with the new schemes', () => {
  function fixture(): { dir: string; model: string } {
    const dir = tmpDir();
    const model = join(dir, 'm.onnx');
    saveModel(residualNet(), model);
    return { dir, model };
  }

  it('writes a model per scheme and reports it', () => {
    const { dir, model } = fixture();
    for (const [scheme, extra] of [
      ['linear:4', ['--per-channel']],
      ['log2', []],
      ['fp16', []],
      ['weight-int4', ['--block-size', '16']],
    ] as const) {
      const out = join(dir, `${scheme.replace(':', '')}.onnx`);
      const r = cli(['quantize', model, '-o', out, '--scheme', scheme, ...extra, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.equal(report.scheme, scheme);
      assert.ok(report.weightBytes.after < report.weightBytes.before, scheme);
    }
    const text = cli(['quantize', model, '-o', join(dir, 't.onnx'), '--scheme', 'linear:3']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /linear:3 \(float32 activations, 3-bit linear \(uint4\) weights per tensor\)/);
  });

  it('refuses bad input in one line, exit 2, writing nothing', () => {
    const { dir, model } = fixture();
    const noWeights = join(dir, 'relu.onnx');
    const b = new ModelBuilder({ opset: 13 });
    b.output(b.op('Relu', [b.input('x', 'float32', [2, 3])]), 'y');
    saveModel(b.build(), noWeights);
    const out = join(dir, 'q.onnx');
    const cases: Array<[string[], RegExp]> = [
      [['--scheme', 'linear:1'], /linear:1: the bit width must be a whole number from 2 to 8/],
      [['--scheme', 'linear:9'], /linear:9: the bit width/],
      [['--scheme', 'linear:x'], /linear:x: the bit width/],
      [['--scheme', 'linear:4', '--activations'], /calibrates activations: give calibration data/],
      [['--scheme', 'fp16', '--activations'], /--activations goes with --scheme linear/],
      [['--scheme', 'weight-int4', '--block-size', '48'], /--block-size 48: expected a power of two/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli(['quantize', model, '-o', out, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    }
    for (const scheme of ['linear:4', 'weight-int4']) {
      const r = cli(['quantize', noWeights, '-o', out, '--scheme', scheme]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /nothing to quantize/);
    }
    assert.deepEqual(listFiles(dir), ['m.onnx', 'relu.onnx']);
  });
});
