/**
 * QDQ insertion: golden structure on small graphs (what gets a Q/DQ pair, which grid is shared,
 * which ReLU is absorbed, the axes and dtypes of weights and biases), and the quantized model
 * running on onnxruntime close to the float one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgreementAccumulator } from '../../src/eval/agreement.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { assertValid } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { quantizeModel } from '../../src/quantize/index.js';
import { matchLayers } from '../../src/quantize/layers.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { calibData, lines, ops, residualNet, uniform } from './helpers.js';

const backend = nodeBackend();

async function quantized(m: Model, options: Partial<Parameters<typeof quantizeModel>[1]> = {}, dims = [3, 8, 8]): Promise<Model> {
  await quantizeModel(m, { calib: calibData(16, dims), calibSize: 16, backend, ...options });
  assertValid(m, 'quantized', { registry: defaultRegistry() });
  return m;
}

function initializer(m: Model, name: string) {
  const v = m.graph.initializers.find((i) => i.name === name);
  assert.ok(v?.initializer, `initializer ${name}`);
  return v.initializer;
}

describe('QDQ insertion', () => {
  it('golden: residual CNN, uint8 activations, per-channel int8 weights, int32 biases', async () => {
    const m = await quantized(residualNet());
    assert.deepEqual(lines(m), [
      '%x_quantized = QuantizeLinear "x_QuantizeLinear"(%x, %x_scale, %x_zero_point)',
      '%x_dequantized = DequantizeLinear "x_DequantizeLinear"(%x_quantized, %x_scale, %x_zero_point)',
      '%w1_dequantized = DequantizeLinear "w1_DequantizeLinear"(%w1_quantized, %w1_scale) {axis=0}',
      '%b1_dequantized = DequantizeLinear "b1_DequantizeLinear"(%b1_quantized, %b1_scale) {axis=0}',
      '%c1 = Conv "conv1"(%x_dequantized, %w1_dequantized, %b1_dequantized) {kernel_shape=[3,3], pads=[1,1,1,1]}',
      // The ReLU is gone: the Q's grid starts at 0, and the DQ output carries the ReLU's output name.
      '%c1_quantized = QuantizeLinear "c1_QuantizeLinear"(%c1, %c1_scale, %c1_zero_point)',
      '%r1 = DequantizeLinear "c1_DequantizeLinear"(%c1_quantized, %c1_scale, %c1_zero_point)',
      // MaxPool moves data: its output shares the input's grid.
      '%p1 = MaxPool "pool"(%r1) {kernel_shape=[2,2], strides=[2,2]}',
      '%p1_quantized = QuantizeLinear "p1_QuantizeLinear"(%p1, %c1_scale, %c1_zero_point)',
      '%p1_dequantized = DequantizeLinear "p1_DequantizeLinear"(%p1_quantized, %c1_scale, %c1_zero_point)',
      '%w2_dequantized = DequantizeLinear "w2_DequantizeLinear"(%w2_quantized, %w2_scale) {axis=0}',
      '%b2_dequantized = DequantizeLinear "b2_DequantizeLinear"(%b2_quantized, %b2_scale) {axis=0}',
      '%c2 = Conv "conv2"(%p1_dequantized, %w2_dequantized, %b2_dequantized) {kernel_shape=[1,1]}',
      '%c2_quantized = QuantizeLinear "c2_QuantizeLinear"(%c2, %c2_scale, %c2_zero_point)',
      '%c2_dequantized = DequantizeLinear "c2_DequantizeLinear"(%c2_quantized, %c2_scale, %c2_zero_point)',
      '%sum = Add "add"(%c2_dequantized, %p1_dequantized)',
      '%sum_quantized = QuantizeLinear "sum_QuantizeLinear"(%sum, %sum_scale, %sum_zero_point)',
      '%sum_dequantized = DequantizeLinear "sum_DequantizeLinear"(%sum_quantized, %sum_scale, %sum_zero_point)',
      '%g = GlobalAveragePool "gap"(%sum_dequantized)',
      '%g_quantized = QuantizeLinear "g_QuantizeLinear"(%g, %g_scale, %g_zero_point)',
      '%g_dequantized = DequantizeLinear "g_DequantizeLinear"(%g_quantized, %g_scale, %g_zero_point)',
      '%f = Flatten "flatten"(%g_dequantized) {axis=1}',
      '%f_quantized = QuantizeLinear "f_QuantizeLinear"(%f, %g_scale, %g_zero_point)',
      '%f_dequantized = DequantizeLinear "f_DequantizeLinear"(%f_quantized, %g_scale, %g_zero_point)',
      '%fc_w_dequantized = DequantizeLinear "fc_w_DequantizeLinear"(%fc_w_quantized, %fc_w_scale, %fc_w_zero_point) {axis=0}',
      '%fc_b_dequantized = DequantizeLinear "fc_b_DequantizeLinear"(%fc_b_quantized, %fc_b_scale) {axis=0}',
      // The graph output stays float (QGemm fuses with a float output).
      '%y = Gemm "fc"(%f_dequantized, %fc_w_dequantized, %fc_b_dequantized) {transB=1}',
    ]);
    assert.equal(initializer(m, 'x_zero_point').dtype, 'uint8');
    assert.equal(initializer(m, 'c1_zero_point').scalarValue(), 0, 'ReLU grid starts at 0');
    const w1 = initializer(m, 'w1_quantized');
    assert.equal(w1.dtype, 'int8');
    assert.deepEqual(w1.dims, [4, 3, 3, 3]);
    assert.deepEqual(initializer(m, 'w1_scale').dims, [4]);
    // Bias: int32, scale = input scale × weight scale, per channel.
    const b1 = initializer(m, 'b1_quantized');
    assert.equal(b1.dtype, 'int32');
    const xs = initializer(m, 'x_scale').scalarValue();
    const ws = initializer(m, 'w1_scale').toFloat32();
    const bs = initializer(m, 'b1_scale').toFloat32();
    for (let c = 0; c < 4; c++) assert.equal(bs[c], Math.fround(xs * ws[c]));
    assert.equal(initializer(m, 'fc_w_zero_point').dtype, 'int8');
  });

  it('int8 scheme: int8 grids; symmetric activations keep the ReLU (zero point 0 cannot clamp)', async () => {
    const asym = await quantized(residualNet(), { scheme: 'int8' });
    assert.equal(initializer(asym, 'x_zero_point').dtype, 'int8');
    assert.equal(initializer(asym, 'c1_zero_point').scalarValue(), -128, 'asymmetric int8 ReLU grid starts at -128');
    assert.equal(ops(asym).Relu, undefined);
    const sym = await quantized(residualNet(), { scheme: 'int8', symmetricActivations: true });
    assert.equal(ops(sym).Relu, 1);
    for (const v of sym.graph.initializers)
      if (v.name.endsWith('_zero_point') && v.initializer?.rank === 0) assert.equal(v.initializer.scalarValue(), 0);
  });

  it('per-tensor weights: one scale, no axis', async () => {
    const m = await quantized(residualNet(), { perChannel: false });
    assert.deepEqual(initializer(m, 'w1_scale').dims, []);
    assert.deepEqual(initializer(m, 'b1_scale').dims, []);
    assert.ok(!lines(m).some((l) => l.includes('w1_DequantizeLinear') && l.includes('axis')));
  });

  it('weight axes: Gemm without transB and MatMul use the output column; a MatMul of two activations gets two grids', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['N', 6]);
    const h = b.op(
      'Gemm',
      [x, b.constant('g_w', uniform([6, 4], 0.5, 1)), b.constant('g_b', uniform([4], 0.5, 2))],
      {},
      { name: 'gemm', outputNames: ['h'] },
    );
    const k = b.op('MatMul', [h, b.constant('m_w', uniform([4, 3], 0.5, 3))], {}, { name: 'matmul', outputNames: ['k'] });
    const t = b.op('Transpose', [k], { perm: [1, 0] }, { name: 't', outputNames: ['kt'] });
    const s = b.op('MatMul', [k, t], {}, { name: 'self', outputNames: ['s'] });
    b.output(s, 'y');
    const m = await quantized(b.build(), {}, [6]);
    const text = lines(m).join('\n');
    assert.match(text, /DequantizeLinear "g_w_DequantizeLinear"\(%g_w_quantized, %g_w_scale, %g_w_zero_point\) \{axis=1\}/);
    assert.deepEqual(initializer(m, 'g_w_scale').dims, [4]);
    assert.match(text, /DequantizeLinear "m_w_DequantizeLinear"\(%m_w_quantized, %m_w_scale, %m_w_zero_point\) \{axis=1\}/);
    assert.deepEqual(initializer(m, 'm_w_scale').dims, [3]);
    // MatMul(k, kᵀ): both inputs read DQs; the Transpose passes k's grid through.
    assert.match(text, /%y = MatMul "self"\(%k_dequantized, %kt_dequantized\)/);
    assert.match(text, /QuantizeLinear "kt_QuantizeLinear"\(%kt, %k_scale, %k_zero_point\)/);
  });

  it('ConvTranspose: weight per channel on axis 1, bias scale per output channel across groups', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['N', 4, 4, 4]);
    const y = b.op(
      'ConvTranspose',
      [x, b.constant('w', uniform([4, 3, 2, 2], 0.5, 1)), b.constant('bias', uniform([6], 0.5, 2))],
      {
        kernel_shape: [2, 2],
        strides: [2, 2],
        group: 2,
      },
      { name: 'up', outputNames: ['u'] },
    );
    b.output(b.op('Relu', [y], {}, { outputNames: ['r'] }), 'y');
    const m = await quantized(b.build(), {}, [4, 4, 4]);
    assert.deepEqual(initializer(m, 'w_scale').dims, [3]);
    const xs = initializer(m, 'x_scale').scalarValue();
    const ws = initializer(m, 'w_scale').toFloat32();
    const bs = initializer(m, 'bias_scale').toFloat32();
    assert.equal(bs.length, 6);
    for (let o = 0; o < 6; o++) assert.equal(bs[o], Math.fround(xs * ws[o % 3]));
  });

  it('Clip(0, 6) is absorbed like a ReLU; Clip(-1, 1) stays', async () => {
    const build = (lo: number, hi: number): Model => {
      const b = new ModelBuilder({ opset: 13 });
      const x = b.input('x', 'float32', ['N', 3, 8, 8]);
      const c = b.op('Conv', [x, b.constant('w', uniform([4, 3, 1, 1], 1, 1))], { kernel_shape: [1, 1] }, { outputNames: ['c'] });
      const k = b.op('Clip', [c, b.floats('lo', [], [lo]), b.floats('hi', [], [hi])], {}, { outputNames: ['k'] });
      const c2 = b.op('Conv', [k, b.constant('w2', uniform([2, 4, 1, 1], 1, 2))], { kernel_shape: [1, 1] }, { outputNames: ['c2'] });
      b.output(c2, 'y');
      return b.build();
    };
    const relu6 = await quantized(build(0, 6));
    assert.equal(ops(relu6).Clip, undefined);
    const range = initializer(relu6, 'c_scale').scalarValue() * 255;
    assert.ok(range <= 6 + 1e-5, `the grid ends at or below 6 (${range})`);
    const clip = await quantized(build(-1, 1));
    assert.equal(ops(clip).Clip, 1);
  });

  it('--exclude keeps op types or named nodes in float', async () => {
    const byOp = await quantized(residualNet(), { exclude: ['Gemm'] });
    assert.ok(
      lines(byOp).some((l) => l.startsWith('%y = Gemm "fc"(%f, %fc_w, %fc_b)') || l.includes('Gemm "fc"(%f_dequantized, %fc_w, %fc_b)')),
    );
    const byName = await quantized(residualNet(), { exclude: ['conv2'] });
    assert.ok(
      lines(byName).some((l) => l.includes('Conv "conv2"(%p1') && l.includes('%w2, %b2)')),
      lines(byName).join('\n'),
    );
  });

  it('refuses a model with nothing to quantize', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['N', 4]);
    b.output(b.op('Relu', [x]), 'y');
    await assert.rejects(quantized(b.build(), {}, [4]), /nothing to quantize: the model has no Conv, ConvTranspose, Gemm or MatMul/);
  });

  it('refuses a scheme that does not exist, naming those that do', async () => {
    await assert.rejects(quantized(residualNet(), { scheme: 'int3' }), /--scheme int3: no such scheme; the schemes are uint8, int8/);
  });

  it('matches every quantized activation back to its float tensor by name', async () => {
    const float = residualNet();
    const q = await quantized(residualNet());
    const names = matchLayers(float, q).map((l) => `${l.float}=${l.quantized}`);
    assert.deepEqual(names, [
      'x=x_dequantized',
      'r1=r1',
      'p1=p1_dequantized',
      'c2=c2_dequantized',
      'sum=sum_dequantized',
      'g=g_dequantized',
      'f=f_dequantized',
    ]);
  });

  for (const scheme of ['uint8', 'int8']) {
    it(`${scheme}: the quantized model runs on onnxruntime and follows the float one (SQNR > 25 dB)`, async () => {
      const float = residualNet(7);
      const q = readOnnx(writeOnnx(float).model);
      await quantized(q, { scheme });
      const x = uniform([16, 3, 8, 8], 1, 99);
      const run = async (m: Model) => {
        const s = await backend.createSession(m);
        try {
          return (await s.run({ x })).y;
        } finally {
          await s.release();
        }
      };
      const acc = new AgreementAccumulator();
      acc.add('y', await run(float), await run(q));
      const [r] = acc.result();
      assert.ok(r.sqnrDb > 25, `SQNR ${r.sqnrDb.toFixed(1)} dB`);
      assert.ok(r.cosine > 0.99, `cosine ${r.cosine}`);
    });
  }
});
