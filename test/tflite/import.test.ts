/** TFLite → IR: onnxruntime on the imported graph gives the outputs the real TFLite interpreter gives. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMobilizeError } from '../../src/errors.js';
import { readModel } from '../../src/formats/index.js';
import { exportTflite } from '../../src/formats/tflite/export/index.js';
import { importTflite, unsupportedOps } from '../../src/formats/tflite/import.js';
import { Builtin, TensorType, type TfliteModel } from '../../src/formats/tflite/model.js';
import { readTflite } from '../../src/formats/tflite/read.js';
import { writeTflite } from '../../src/formats/tflite/write.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { inferShapes } from '../../src/ops/infer.js';
import { optimize } from '../../src/passes/pipeline.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { loadTflite } from '../../src/runtime/tflite.js';
import { cli, OCR_MODELS, tmpDir } from '../helpers.js';
import { FACE, FACE_SPARSE, fileBytes, floatConvNet, HANDS, int8ConvNet, noise, SELFIE } from './import-fixtures.js';

type Outputs = Record<string, Tensor>;

function inputsFor(m: TfliteModel, seed: number): Record<string, Tensor> {
  const g = m.subgraphs[0];
  const feeds: Record<string, Tensor> = {};
  for (const [k, i] of g.inputs.entries()) {
    const t = g.tensors[i];
    const x = noise(
      t.shape.reduce((a, b) => a * b, 1),
      seed + k,
    );
    feeds[t.name] =
      t.type === TensorType.INT8
        ? Tensor.from(
            'int8',
            t.shape,
            Int8Array.from(x, (v) => Math.round(v * 127)),
          )
        : Tensor.from('float32', t.shape, x);
  }
  return feeds;
}

async function interpreter(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Outputs> {
  const r = await loadTflite(bytes);
  try {
    return await r.run(feeds);
  } finally {
    r.dispose();
  }
}

async function onnxruntime(model: Model, feeds: Record<string, Tensor>): Promise<Outputs> {
  const s = await nodeBackend().createSession(model);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/** Largest |a − b| over the largest |b|, per output; both sides must have the same outputs. */
function worst(ours: Outputs, ref: Outputs): { rel: number; abs: number } {
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(ref).sort());
  let rel = 0;
  let abs = 0;
  for (const name of Object.keys(ref)) {
    assert.deepEqual(ours[name].dims, ref[name].dims, name);
    const a = ours[name].data as ArrayLike<number>;
    const b = ref[name].data as ArrayLike<number>;
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < b.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    abs = Math.max(abs, diff);
    rel = Math.max(rel, diff / Math.max(scale, 1e-12));
  }
  return { rel, abs };
}

/**
 * selfie_segmentation's custom Convolution2DTransposeBias is not in the interpreter; its builtin
 * twin TRANSPOSE_CONV (inputs: output shape, filter, x, bias) is, so the reference runs that.
 */
function withBuiltinTransposeConv(m: TfliteModel): TfliteModel {
  const g = m.subgraphs[0];
  const custom = m.operatorCodes.findIndex((c) => c.customCode === 'Convolution2DTransposeBias');
  m.operatorCodes.push({ builtinCode: Builtin.TRANSPOSE_CONV, version: 3 });
  for (const op of g.operators) {
    if (op.opcodeIndex !== custom) continue;
    const raw = new DataView(op.customOptions!.buffer, op.customOptions!.byteOffset, 12);
    const out = g.tensors[op.outputs[0]];
    m.buffers.push(new Uint8Array(Int32Array.from(out.shape).buffer));
    g.tensors.push({ name: `${out.name}/output_shape`, shape: [4], type: TensorType.INT32, buffer: m.buffers.length - 1 });
    const [x, w, b] = op.inputs;
    op.opcodeIndex = m.operatorCodes.length - 1;
    op.inputs = [g.tensors.length - 1, w, x, b];
    op.customOptions = undefined;
    op.options = {
      type: 'TransposeConvOptions',
      fields: { padding: raw.getInt32(0, true) === 2 ? 1 : 0, stride_w: raw.getInt32(4, true), stride_h: raw.getInt32(8, true) },
    };
  }
  return m;
}

describe('TFLite import', () => {
  for (const path of [FACE, FACE_SPARSE, HANDS]) {
    const name = path.split('/').pop()!;
    it(`imports ${name}: onnxruntime matches the TFLite interpreter within 1e-4`, async () => {
      const bytes = fileBytes(path);
      const tflite = readTflite(bytes, { source: name });
      const model = importTflite(tflite, { source: name });
      // Inputs and outputs keep the file's names, NHWC shapes and types.
      const g = tflite.subgraphs[0];
      assert.deepEqual(
        model.graph.inputs.map((v) => v.name),
        g.inputs.map((i) => g.tensors[i].name),
      );
      assert.deepEqual(
        model.graph.outputs.map((v) => v.name),
        g.outputs.map((i) => g.tensors[i].name),
      );
      const feeds = inputsFor(tflite, 1);
      const { rel } = worst(await onnxruntime(model, feeds), await interpreter(bytes, feeds));
      assert.ok(rel < 1e-4, `relative error ${rel}`);
      // Convolutions, pads, adds and activations chain in NCHW: a few Transposes at the edges only.
      assert.ok(model.graph.nodes.filter((n) => n.opType === 'Transpose').length <= 5);
    });
  }

  it('imports selfie_segmentation with its custom transposed convolution, matching the interpreter on the builtin twin', async () => {
    const bytes = fileBytes(SELFIE);
    const model = importTflite(readTflite(bytes), { source: 'selfie' });
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'ConvTranspose').length, 1);
    const reference = writeTflite(withBuiltinTransposeConv(readTflite(bytes)));
    const feeds = inputsFor(readTflite(bytes), 2);
    const { rel } = worst(await onnxruntime(model, feeds), await interpreter(reference, feeds));
    assert.ok(rel < 1e-4, `relative error ${rel}`);
  });

  it('imports a float conv net built in code: fused activations, pools, reshape, dense, softmax, mean', async () => {
    const bytes = writeTflite(floatConvNet());
    const model = readModel(bytes, { source: 'small.tflite' });
    const ops = new Set(model.graph.nodes.map((n) => n.opType));
    for (const op of ['Conv', 'Relu', 'Clip', 'AveragePool', 'MaxPool', 'Gemm', 'Softmax', 'ReduceMean']) assert.ok(ops.has(op), op);
    // NHWC ↔ NCHW only where the layout changes meaning: after the input, before RESHAPE and MEAN.
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'Transpose').length, 3);
    const feeds = inputsFor(readTflite(bytes), 3);
    const { rel } = worst(await onnxruntime(model, feeds), await interpreter(bytes, feeds));
    assert.ok(rel < 1e-4, `relative error ${rel}`);
  });

  it('imports a full-integer int8 net as QDQ: outputs within one quantization step of the interpreter', async () => {
    const m = int8ConvNet();
    const bytes = writeTflite(m);
    const model = importTflite(readTflite(bytes));
    assert.equal(model.graph.inputs[0].type?.kind === 'tensor' && model.graph.inputs[0].type.dtype, 'int8');
    const dq = model.graph.nodes.filter((n) => n.opType === 'DequantizeLinear');
    // Per-channel weights keep their axis: the depthwise filter's axis 3 (NHWC) is axis 0 of the ONNX filter.
    const perChannel = dq.filter((n) => n.attrs.has('axis'));
    assert.ok(perChannel.length >= 3);
    for (const n of perChannel) assert.equal(n.int('axis'), 0, n.name);
    // Activations are quantized in NCHW between spatial ops: Transposes only after the input and before RESHAPE.
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'Transpose').length, 2);
    for (let seed = 0; seed < 4; seed++) {
      const feeds = inputsFor(m, 10 + seed);
      const { abs } = worst(await onnxruntime(model, feeds), await interpreter(bytes, feeds));
      assert.ok(abs <= 1, `${abs} quantization steps apart`);
    }
  });

  it('round-trips an int8 tflite → QDQ IR → int8 tflite through the exporter within one quantization step', async () => {
    const m = int8ConvNet();
    const bytes = writeTflite(m);
    const { tflite } = await exportTflite(importTflite(readTflite(bytes)), { precision: 'int8', ioType: 'int8' });
    const again = writeTflite(tflite);
    for (let seed = 0; seed < 3; seed++) {
      const feeds = inputsFor(m, 20 + seed);
      const { abs } = worst(await interpreter(again, feeds), await interpreter(bytes, feeds));
      assert.ok(abs <= 1, `${abs} quantization steps apart`);
    }
  });

  it('round-trips tflite → IR → tflite through the exporter with identical outputs on the interpreter', async () => {
    const bytes = fileBytes(FACE);
    const { tflite, report } = await exportTflite(importTflite(readTflite(bytes)));
    assert.equal(report.transposes, 0);
    const feeds = inputsFor(readTflite(bytes), 4);
    const { rel } = worst(await interpreter(writeTflite(tflite), feeds), await interpreter(bytes, feeds));
    assert.ok(rel < 1e-5, `relative error ${rel}`);
  });

  it('imports what the exporter writes for PaddleOCR rec (strided slices, batch matmuls, dense, softmax) within 1e-4', async () => {
    const onnx = readModel(fileBytes(join(OCR_MODELS, 'ch_PP-OCRv4_rec_infer.onnx')));
    inferShapes(onnx, { inputShapes: { x: [1, 3, 48, 96] } });
    optimize(onnx);
    const bytes = writeTflite((await exportTflite(onnx)).tflite);
    const tflite = readTflite(bytes);
    const used = new Set(tflite.subgraphs[0].operators.map((op) => tflite.operatorCodes[op.opcodeIndex].builtinCode));
    for (const code of [Builtin.STRIDED_SLICE, Builtin.BATCH_MATMUL, Builtin.FULLY_CONNECTED, Builtin.MEAN, Builtin.SOFTMAX])
      assert.ok(used.has(code), `${code}`);
    const feeds = inputsFor(tflite, 6);
    const { rel } = worst(await onnxruntime(importTflite(tflite), feeds), await interpreter(bytes, feeds));
    assert.ok(rel < 1e-4, `relative error ${rel}`);
  });

  it('names every op it cannot lower, with counts, in one line', () => {
    const m = readTflite(writeTflite(floatConvNet()));
    m.operatorCodes.push({ builtinCode: Builtin.CUSTOM, version: 1, customCode: 'MaxUnpooling2D' });
    m.operatorCodes.push({ builtinCode: Builtin.LSTM, version: 1 });
    const ops = m.subgraphs[0].operators;
    ops.push(
      { opcodeIndex: m.operatorCodes.length - 2, inputs: [0], outputs: [1] },
      { opcodeIndex: m.operatorCodes.length - 2, inputs: [0], outputs: [1] },
    );
    ops.push({ opcodeIndex: m.operatorCodes.length - 1, inputs: [0], outputs: [1] });
    assert.deepEqual(unsupportedOps(m), ['custom MaxUnpooling2D ×2', 'LSTM']);
    assert.throws(
      () => importTflite(m, { source: 'x.tflite' }),
      (e: unknown) =>
        isMobilizeError(e) &&
        e.exitCode === 2 &&
        /^x\.tflite: cannot import these TFLite ops: custom MaxUnpooling2D ×2, LSTM;/.test(e.message),
    );
  });

  it('lets every command read .tflite files: mobilize convert x.tflite -o y.onnx', async () => {
    const dir = tmpDir();
    const input = join(dir, 'small.tflite');
    const bytes = writeTflite(floatConvNet());
    writeFileSync(input, bytes);
    const r = cli(['convert', input, '-o', join(dir, 'small.onnx')]);
    assert.equal(r.code, 0, r.stderr);
    const onnx = readModel(fileBytes(join(dir, 'small.onnx')));
    const feeds = inputsFor(readTflite(bytes), 5);
    const { rel } = worst(await onnxruntime(onnx, feeds), await interpreter(bytes, feeds));
    assert.ok(rel < 1e-4, `relative error ${rel}`);
  });
});
