/**
 * The TFLite exporter in fp32, checked on the real interpreter (WASM) against onnxruntime: conv
 * nets built in code that use every lowering (depthwise, grouped and transposed convolutions,
 * pooling with SAME/VALID/explicit pads, residual adds, SE blocks, concat, both resizes, pad,
 * activations, flatten into a dense layer), a sequence model (dense layers over rank-3 inputs,
 * attention's batched matmuls through a Transpose, softmax, layer norm, slices), and PaddleOCR's
 * direction classifier from npm. With io nhwc a conv net has no TRANSPOSE at all; with nchw one
 * sits at each image input/output. Ops without a builtin and dynamic dims are refused in one line.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMobilizeError } from '../../src/errors.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { exportTflite } from '../../src/formats/tflite/export/index.js';
import { Builtin, TensorType, type TfliteModel } from '../../src/formats/tflite/model.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { optimizeModel } from '../../src/pipeline/optimize.js';
import { Random } from '../../src/util/random.js';
import { OCR_MODELS } from '../helpers.js';
import { exportAndCompare, visionNet, weights } from './export-helpers.js';

/** Dense layers over a sequence, self-attention, layer norm, slices, gathers, splits. */
function sequenceNet(seed = 3): Model {
  const rng = new Random(seed);
  const b = new ModelBuilder({ opset: 17, name: 'sequence' });
  const x = b.input('tokens', 'float32', [1, 8, 6]);
  const dense = (name: string, v: Value) => b.op('MatMul', [v, b.constant(name, weights(rng, [6, 6], 0.4))]);
  const q = dense('wq', x);
  const k = dense('wk', x);
  const v = dense('wv', x);
  const scores = b.op('Mul', [b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 2, 1] })]), b.floats('scale', [], [0.4])]);
  const att = b.op('MatMul', [b.op('Softmax', [scores], { axis: -1 }), v]);
  const ln = b.op(
    'LayerNormalization',
    [b.op('Add', [att, x]), b.constant('gamma', weights(rng, [6], 1)), b.constant('beta', weights(rng, [6], 0.1))],
    { axis: -1 },
  );
  const mean = b.op('ReduceMean', [ln], { axes: [1], keepdims: 0 });
  const sl = b.op('Slice', [ln, b.ints('starts', [1]), b.ints('ends', [7]), b.ints('axes', [1]), b.ints('steps', [2])]);
  const g = b.op('Gather', [ln, b.ints('idx', [0, 3])], { axis: 1 });
  const un = b.op('Unsqueeze', [mean, b.ints('un_axes', [1])]);
  b.output(b.op('Concat', [sl, g, un], { axis: 1 }), 'mixed');
  const parts = b.opMulti('Split', [ln, b.ints('split', [2, 4])], { axis: 2 }, { outputs: 2 });
  b.output(b.op('Tanh', [parts[1]]), 'tail');
  // Reversed along the sequence (negative step past the start), then mirror-padded.
  const reversed = b.op('Slice', [
    parts[0],
    b.ints('r_starts', [-1]),
    b.ints('r_ends', [-9]),
    b.ints('r_axes', [1]),
    b.ints('r_steps', [-1]),
  ]);
  b.output(b.op('Pad', [reversed, b.ints('r_pads', [0, 1, 0, 0, 2, 1])], { mode: 'reflect' }), 'mirrored');
  return b.build();
}

function count(m: TfliteModel, code: number): number {
  const index = m.operatorCodes.findIndex((c) => c.builtinCode === code);
  return m.subgraphs[0].operators.filter((o) => o.opcodeIndex === index).length;
}

function assertClose(outputs: { name: string; relative: number }[], tolerance: number): void {
  for (const o of outputs) assert.ok(o.relative <= tolerance, `${o.name}: relative difference ${o.relative.toExponential(2)}`);
}

describe('TFLite export (fp32) on the real interpreter', () => {
  it('a conv net with every image lowering matches onnxruntime, NHWC inside, with fused activations', async () => {
    const model = visionNet();
    const nchw = await exportAndCompare(model, { io: 'nchw' });
    assertClose(nchw.outputs, 1e-4);
    const nhwc = await exportAndCompare(model, { io: 'nhwc' });
    assertClose(nhwc.outputs, 1e-4);
    // NHWC I/O: no TRANSPOSE anywhere; NCHW I/O: one at the input, one at the map output.
    assert.equal(nhwc.report.transposes, 0);
    assert.equal(nchw.report.transposes, 2);
    const h = nhwc.report.opHistogram;
    assert.equal(h.DEPTHWISE_CONV_2D, 1);
    assert.equal(h.TRANSPOSE_CONV, 1);
    assert.equal(h.SPLIT, 1, 'the grouped conv splits its channels');
    assert.equal(h.RESIZE_NEAREST_NEIGHBOR, 1);
    assert.equal(h.RESIZE_BILINEAR, 1);
    assert.equal(h.RELU, undefined, 'Relu after conv and add is fused');
    assert.equal(h.RELU6, undefined, 'Relu6 after the depthwise conv is fused');
    const sub = nhwc.tflite.subgraphs[0];
    // Names and layouts at the boundary: the ONNX names, NHWC shapes.
    assert.deepEqual(
      sub.inputs.map((t) => [sub.tensors[t].name, sub.tensors[t].shape]),
      [['image', [1, 16, 16, 3]]],
    );
    assert.deepEqual(
      sub.outputs.map((t) => sub.tensors[t].name),
      ['map', 'probs'],
    );
    assert.deepEqual(
      nhwc.tflite.signatureDefs[0].inputs.map((s) => s.name),
      ['image'],
    );
    assert.equal(sub.tensors[sub.outputs[0]].shape.join('x'), '1x19x19x4');
    // The explicit Pad, and the stride-2 depthwise conv whose symmetric pads SAME cannot express.
    assert.equal(h.PAD, 2);
    // Conv filters are [O, kh, kw, I]; depthwise [1, kh, kw, O].
    const conv = sub.operators.find((o) => nhwc.tflite.operatorCodes[o.opcodeIndex].builtinCode === Builtin.DEPTHWISE_CONV_2D);
    assert.deepEqual(sub.tensors[conv?.inputs[1] ?? 0].shape, [1, 3, 3, 8]);
  });

  it('a sequence model (dense, attention, layer norm, slices) matches onnxruntime without layout transposes', async () => {
    const r = await exportAndCompare(sequenceNet(), { io: 'nhwc' });
    assertClose(r.outputs, 1e-4);
    // K's Transpose is absorbed by BATCH_MATMUL's adj_y: nothing moves data.
    assert.equal(r.report.transposes, 0);
    assert.equal(r.report.opHistogram.BATCH_MATMUL, 2);
    assert.equal(r.report.opHistogram.FULLY_CONNECTED, 3);
    assert.equal(r.report.opHistogram.MIRROR_PAD, 1);
  });

  it('dense layers: Gemm with alpha/beta/transB=0, a full C matrix, and MatMul over rank 3', async () => {
    const rng = new Random(11);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 6]);
    const g1 = b.op('Gemm', [x, b.constant('w1', weights(rng, [6, 4])), b.constant('c1', weights(rng, [4]))], { alpha: 0.5, beta: 2 });
    const g2 = b.op('Gemm', [g1, b.constant('w2', weights(rng, [3, 4])), b.constant('c2', weights(rng, [2, 3]))], { transB: 1 });
    const seq = b.op('Reshape', [b.op('Relu', [g2]), b.ints('shape', [1, 2, 3])]);
    b.output(b.op('MatMul', [seq, b.constant('w3', weights(rng, [3, 5]))]), 'y');
    const r = await exportAndCompare(b.build());
    assertClose(r.outputs, 1e-5);
    assert.equal(r.report.opHistogram.FULLY_CONNECTED, 3);
    assert.equal(r.report.opHistogram.ADD, 1, 'the [2, 3] C is added after the dense layer');
  });

  it("PaddleOCR's direction classifier (npm) matches onnxruntime within 1e-4, no TRANSPOSE with io nhwc", async () => {
    const model = readOnnx(new Uint8Array(readFileSync(join(OCR_MODELS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'))));
    await optimizeModel(model, { inputShapes: { x: [1, 3, 48, 192] }, opset: 17 });
    const nchw = await exportAndCompare(model, { io: 'nchw' });
    assertClose(nchw.outputs, 1e-4);
    assert.equal(nchw.report.transposes, 1, 'one TRANSPOSE: the NCHW input');
    const nhwc = await exportAndCompare(model, { io: 'nhwc' });
    assertClose(nhwc.outputs, 1e-4);
    assert.equal(nhwc.report.transposes, 0);
    assert.equal(count(nhwc.tflite, Builtin.HARD_SWISH), 18);
    assert.ok(nhwc.tflite.subgraphs[0].tensors.every((t) => t.type === TensorType.FLOAT32 || t.type === TensorType.INT32));
  });
});

describe('TFLite export refusals', () => {
  async function refused(model: Model, pattern: RegExp): Promise<void> {
    await assert.rejects(exportTflite(model), (e: unknown) => {
      assert.ok(isMobilizeError(e), String(e));
      assert.equal(e.exitCode, 2);
      assert.match(e.message, pattern);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }

  it('names the node and the op that has no TFLite builtin', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 4]);
    b.output(b.op('Erf', [b.op('Relu', [x])], {}, { name: 'the_erf' }), 'y');
    await refused(b.build(), /Erf node "the_erf".*op Erf has no TFLite builtin/);
  });

  it('names the input with dynamic dims and suggests --input-shape', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('pixels', 'float32', ['N', 3, 8, 8]);
    b.output(b.op('Relu', [x]), 'y');
    await refused(b.build(), /input "pixels" has dynamic dims \[N,3,8,8\].*--input-shape pixels:1x3x8x8/);
  });

  it('refuses a grouped ConvTranspose and unsupported options by name', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 4, 4, 4]);
    const w = b.constant('w', Tensor.from('float32', [4, 2, 2, 2], new Float32Array(32)));
    b.output(b.op('ConvTranspose', [x, w], { kernel_shape: [2, 2], strides: [2, 2], group: 2 }, { name: 'up' }), 'y');
    await refused(b.build(), /ConvTranspose node "up".*grouped ConvTranspose/);
    await assert.rejects(exportTflite(visionNet(), { precision: 'int4' as 'int8' }), /unknown precision "int4"/);
    await assert.rejects(exportTflite(visionNet(), { ioType: 'int8' }), /--io-type int8 needs --precision int8/);
  });
});
