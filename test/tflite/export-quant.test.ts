/**
 * The TFLite exporter's fp16, dynamic-range and int8 precisions on the real interpreter:
 * fp16 weights behind DEQUANTIZE, int8 weights read by the float layers' hybrid kernels, and
 * full int8 per TFLite's quantization spec — per-channel symmetric filters with the right
 * quantized_dimension, int32 biases on the input × weight grid, fixed LOGISTIC/SOFTMAX output
 * grids, float or 8-bit I/O — calibrated here or read from a QDQ model. A Fashion-MNIST CNN
 * trained by `mobilize train` keeps the QDQ model's accuracy on the Debian test set.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArrayDataset } from '../../src/data/arrays.js';
import { openDataset } from '../../src/data/spec.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { exportTflite, type TfliteExportOptions } from '../../src/formats/tflite/export/index.js';
import { Builtin, TensorType, type TfliteModel, type TfliteOperator } from '../../src/formats/tflite/model.js';
import { writeTflite } from '../../src/formats/tflite/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { applyInputShapes } from '../../src/ops/infer.js';
import { quantizeModel } from '../../src/quantize/index.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { loadTflite } from '../../src/runtime/tflite.js';
import { ROOT } from '../helpers.js';
import { exportAndCompare, imageInput, visionNet } from './export-helpers.js';

const backend = nodeBackend();

function opsOf(m: TfliteModel, code: number): TfliteOperator[] {
  return m.subgraphs[0].operators.filter((o) => m.operatorCodes[o.opcodeIndex].builtinCode === code);
}

/** 24 smooth synthetic images for calibration. */
function syntheticImages(dims: number[]): ArrayDataset {
  const n = 24;
  const per = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n * per);
  for (let i = 0; i < n; i++) data.set(imageInput(dims, i * 0.7).toFloat32(), i * per);
  return new ArrayDataset('synthetic', Tensor.from('float32', [n, ...dims], data));
}

describe('TFLite export: fp16 and dynamic range', () => {
  it('fp16 stores half-size weights behind DEQUANTIZE and agrees with fp32 onnxruntime', async () => {
    const model = visionNet();
    const fp32 = await exportAndCompare(model, { io: 'nhwc' });
    const r = await exportAndCompare(model, { io: 'nhwc', precision: 'fp16' });
    for (const o of r.outputs) assert.ok(o.cosine > 0.9999 && o.relative < 1e-2, `${o.name}: cosine ${o.cosine}, relative ${o.relative}`);
    const sub = r.tflite.subgraphs[0];
    for (const op of opsOf(r.tflite, Builtin.CONV_2D)) {
      const filter = op.inputs[1];
      const producer = sub.operators.find((o) => o.outputs.includes(filter));
      assert.ok(producer && r.tflite.operatorCodes[producer.opcodeIndex].builtinCode === Builtin.DEQUANTIZE);
      assert.equal(sub.tensors[producer.inputs[0]].type, TensorType.FLOAT16);
    }
    // Every float32 weight of the fp32 file is a float16 one here: half the bytes.
    const weightBytes = (m: TfliteModel, type: number) =>
      m.subgraphs[0].tensors
        .filter((t) => t.type === type && t.buffer > 0 && t.name.includes('/filter'))
        .reduce((n, t) => n + m.buffers[t.buffer].byteLength, 0);
    assert.equal(weightBytes(r.tflite, TensorType.FLOAT16) * 2, weightBytes(fp32.tflite, TensorType.FLOAT32));
    assert.ok(r.bytes.length < fp32.bytes.length);
  });

  it('dynamic range gives conv and dense layers int8 weights and float activations', async () => {
    const r = await exportAndCompare(visionNet(), { io: 'nhwc', precision: 'dynamic' });
    for (const o of r.outputs) assert.ok(o.cosine > 0.99, `${o.name}: cosine ${o.cosine}`);
    const sub = r.tflite.subgraphs[0];
    for (const code of [Builtin.CONV_2D, Builtin.DEPTHWISE_CONV_2D, Builtin.FULLY_CONNECTED]) {
      for (const op of opsOf(r.tflite, code)) {
        assert.equal(sub.tensors[op.inputs[0]].type, TensorType.FLOAT32);
        const w = sub.tensors[op.inputs[1]];
        assert.equal(w.type, TensorType.INT8);
        assert.ok(w.quantization?.zeroPoint.every((z) => z === 0));
      }
    }
  });
});

describe('TFLite export: full int8', () => {
  it('follows the quantization spec: per-channel filters, int32 biases, fixed output grids', async () => {
    const model = visionNet();
    const calib = syntheticImages([3, 16, 16]);
    const r = await exportAndCompare(model, { io: 'nhwc', precision: 'int8', calib, backend }, imageInput([1, 3, 16, 16], 3));
    for (const o of r.outputs) assert.ok(o.cosine > 0.98, `${o.name}: cosine ${o.cosine}`);
    const sub = r.tflite.subgraphs[0];
    const checkLayer = (op: TfliteOperator, axis: number) => {
      const [x, w, b] = op.inputs.map((i) => sub.tensors[i]);
      assert.equal(x.type, TensorType.INT8);
      assert.equal(w.type, TensorType.INT8);
      const wq = w.quantization;
      assert.ok(wq);
      assert.equal(wq.quantizedDimension, axis);
      assert.equal(wq.scale.length, w.shape[axis]);
      assert.ok(wq.zeroPoint.every((z) => z === 0));
      assert.equal(b.type, TensorType.INT32);
      const inScale = x.quantization?.scale[0] ?? 0;
      b.quantization?.scale.forEach((s, c) => {
        assert.equal(s, Math.fround(inScale * wq.scale[c]));
      });
      assert.ok(b.quantization?.zeroPoint.every((z) => z === 0));
    };
    const convs = opsOf(r.tflite, Builtin.CONV_2D);
    assert.ok(convs.length >= 4);
    for (const op of convs) checkLayer(op, 0);
    const dw = opsOf(r.tflite, Builtin.DEPTHWISE_CONV_2D);
    assert.equal(dw.length, 1);
    checkLayer(dw[0], 3);
    // Dense layers: per-tensor int8 weights (the spec's, and what XNNPACK's int8 kernel takes).
    for (const op of opsOf(r.tflite, Builtin.FULLY_CONNECTED)) {
      const w = sub.tensors[op.inputs[1]];
      assert.equal(w.type, TensorType.INT8);
      assert.deepEqual([w.quantization?.scale.length, w.quantization?.zeroPoint, w.quantization?.quantizedDimension], [1, [0], 0]);
    }
    for (const op of [...opsOf(r.tflite, Builtin.LOGISTIC), ...opsOf(r.tflite, Builtin.SOFTMAX)]) {
      const y = sub.tensors[op.outputs[0]];
      assert.equal(y.type, TensorType.INT8);
      assert.deepEqual([y.quantization?.scale[0], y.quantization?.zeroPoint[0]], [1 / 256, -128]);
    }
    // Float I/O: QUANTIZE at the input, DEQUANTIZE before each output.
    assert.equal(sub.tensors[sub.inputs[0]].type, TensorType.FLOAT32);
    assert.ok(sub.outputs.every((t) => sub.tensors[t].type === TensorType.FLOAT32));
    assert.equal(r.report.transposes, 0);
  });

  it('reads a uint8 QDQ model from mobilize quantize: zero points move by −128, outputs match the QDQ model', async () => {
    const qdq = visionNet();
    await quantizeModel(qdq, { scheme: 'uint8', calib: syntheticImages([3, 16, 16]), backend });
    const r = await exportAndCompare(qdq, { io: 'nhwc', precision: 'int8' }, imageInput([1, 3, 16, 16], 3));
    for (const o of r.outputs) assert.ok(o.cosine > 0.99, `${o.name}: cosine ${o.cosine} against the QDQ model on onnxruntime`);
    const sub = r.tflite.subgraphs[0];
    assert.ok(
      sub.tensors.every((t) => t.type !== TensorType.UINT8),
      'uint8 grids become int8',
    );
    assert.ok(opsOf(r.tflite, Builtin.CONV_2D).every((op) => sub.tensors[op.inputs[0]].type === TensorType.INT8));
    assert.match(r.report.notes.join(' '), /read from the QDQ model/);
  });

  it('takes int8 or uint8 inputs and outputs with --io-type', async () => {
    const model = visionNet();
    const calib = syntheticImages([3, 16, 16]);
    for (const [ioType, type] of [
      ['int8', TensorType.INT8],
      ['uint8', TensorType.UINT8],
    ] as const) {
      const { tflite } = await exportTflite(model, { precision: 'int8', ioType, calib, backend, calibSize: 8 });
      const sub = tflite.subgraphs[0];
      assert.ok([...sub.inputs, ...sub.outputs].every((t) => sub.tensors[t].type === type));
      const runner = await loadTflite(writeTflite(tflite));
      try {
        const x = runner.inputs[0];
        const feed =
          type === TensorType.INT8 ? new Int8Array(x.shape.reduce((a, b) => a * b, 1)) : new Uint8Array(x.shape.reduce((a, b) => a * b, 1));
        const out = await runner.run({ [x.name]: feed });
        assert.equal(out.probs.dtype, ioType);
      } finally {
        runner.dispose();
      }
    }
  });
});

describe('TFLite export of a model with 8-bit inputs and outputs (QDQ at the edges)', () => {
  function quantizedIo(): Model {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('q_in', 'int8', [1, 2, 4, 4]);
    const w = b.constant('w', Tensor.from('int8', [3, 2, 1, 1], Int8Array.from([12, -40, 100, 7, -127, 55])));
    const conv = b.op(
      'Conv',
      [
        b.op('DequantizeLinear', [x, b.floats('s_in', [], [0.05]), b.constant('z_in', Tensor.from('int8', [], Int8Array.of(3)))]),
        b.op(
          'DequantizeLinear',
          [w, b.floats('s_w', [3], [0.01, 0.02, 0.015]), b.constant('z_w', Tensor.from('int8', [3], new Int8Array(3)))],
          { axis: 0 },
        ),
      ],
      { kernel_shape: [1, 1] },
    );
    const q = b.op('QuantizeLinear', [conv, b.floats('s_out', [], [0.04]), b.constant('z_out', Tensor.from('int8', [], Int8Array.of(-5)))]);
    b.output(q, 'q_out');
    return b.build();
  }

  it('keeps them 8-bit with the model’s own parameters and computes what onnxruntime does', async () => {
    const model = quantizedIo();
    const { tflite, report } = await exportTflite(model, { precision: 'int8' });
    const sub = tflite.subgraphs[0];
    const inT = sub.tensors[sub.inputs[0]];
    const outT = sub.tensors[sub.outputs[0]];
    assert.deepEqual(
      [inT.name, inT.type, inT.quantization?.scale[0], inT.quantization?.zeroPoint[0]],
      ['q_in', TensorType.INT8, Math.fround(0.05), 3],
    );
    assert.deepEqual(
      [outT.name, outT.type, outT.quantization?.scale[0], outT.quantization?.zeroPoint[0]],
      ['q_out', TensorType.INT8, Math.fround(0.04), -5],
    );
    assert.match(report.notes.join(' '), /q_in \(int8\)/);
    const data = Int8Array.from({ length: 32 }, (_, i) => ((i * 37) % 256) - 128);
    const session = await backend.createSession(model);
    const runner = await loadTflite(writeTflite(tflite));
    try {
      const ref = (await session.run({ q_in: Tensor.from('int8', [1, 2, 4, 4], data) })).q_out.toNumbers();
      const got = (await runner.run({ q_in: data })).q_out.toNumbers();
      const worst = Math.max(...ref.map((v, i) => Math.abs(v - got[i])));
      assert.ok(worst <= 1, `outputs differ by ${worst} steps`);
    } finally {
      runner.dispose();
      await session.release();
    }
    await assert.rejects(exportTflite(model), /the model is quantized.*--precision int8/);
  });
});

describe('TFLite int8 export of a trained Fashion-MNIST CNN', () => {
  const N = 300;
  const load = (): Model => {
    const m = readOnnx(new Uint8Array(readFileSync(join(ROOT, 'bench/fixtures/fmnist_cnn_trained.onnx'))));
    applyInputShapes(m.graph, { input: [1, 1, 28, 28] });
    return m;
  };

  async function accuracyOnTflite(
    model: Model,
    options: TfliteExportOptions,
    images: Float32Array,
    labels: number[],
  ): Promise<{ acc: number; bytes: number }> {
    const { tflite } = await exportTflite(model, options);
    const bytes = writeTflite(tflite);
    const runner = await loadTflite(bytes);
    let ok = 0;
    try {
      for (let i = 0; i < labels.length; i++) {
        const out = await runner.run({ input: images.subarray(i * 784, (i + 1) * 784) });
        const logits = out.logits.toFloat32();
        if (logits.indexOf(Math.max(...logits)) === labels[i]) ok++;
      }
    } finally {
      runner.dispose();
    }
    return { acc: ok / labels.length, bytes: bytes.length };
  }

  async function accuracyOnOrt(model: Model, images: Float32Array, labels: number[]): Promise<number> {
    const session = await backend.createSession(model);
    let ok = 0;
    try {
      for (let i = 0; i < labels.length; i++) {
        const out = await session.run({ input: Tensor.from('float32', [1, 1, 28, 28], images.slice(i * 784, (i + 1) * 784)) });
        const logits = out.logits.toFloat32();
        if (logits.indexOf(Math.max(...logits)) === labels[i]) ok++;
      }
    } finally {
      await session.release();
    }
    return ok / labels.length;
  }

  it('keeps the QDQ model’s accuracy on the test set (within 0.5 pt), at about a quarter of the fp32 file', async () => {
    const float = load();
    const calib = openDataset('fashion-mnist:train', { input: float.graph.inputs[0] });
    const test = openDataset('fashion-mnist:test', { input: float.graph.inputs[0] });
    const batch = await test.batch(Int32Array.from({ length: N }, (_, i) => i));
    const images = batch.input.toFloat32();
    const labels = batch.label?.toNumbers() ?? [];
    const qdq = load();
    await quantizeModel(qdq, { scheme: 'int8', calib, backend, calibSize: 256 });
    const ortQdq = await accuracyOnOrt(qdq, images, labels);
    const ortFloat = await accuracyOnOrt(float, images, labels);
    const fromQdq = await accuracyOnTflite(qdq, { precision: 'int8' }, images, labels);
    const calibrated = await accuracyOnTflite(float, { precision: 'int8', calib, backend, calibSize: 256 }, images, labels);
    const fp32 = await accuracyOnTflite(float, { precision: 'fp32' }, images, labels);
    assert.equal(fp32.acc, ortFloat);
    assert.ok(Math.abs(fromQdq.acc - ortQdq) <= 0.005, `TFLite int8 ${fromQdq.acc} vs QDQ on onnxruntime ${ortQdq}`);
    assert.ok(Math.abs(calibrated.acc - ortFloat) <= 0.01, `TFLite int8 (calibrated) ${calibrated.acc} vs fp32 ${ortFloat}`);
    assert.ok(calibrated.bytes < 0.32 * fp32.bytes, `${calibrated.bytes} vs ${fp32.bytes} bytes`);
  });
});
