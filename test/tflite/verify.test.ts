/**
 * verifyTflite: hand-built .tflite models (written by writeTflite, run on the real interpreter)
 * against ONNX references on onnxruntime — equal ones pass, a wrong one fails, NHWC↔NCHW
 * is undone, int8 inputs and outputs are (de)quantized with their own parameters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMobilizeError } from '../../src/errors.js';
import { Activation, Builtin, emptyModel, TensorType, type TfliteModel, type TfliteTensor } from '../../src/formats/tflite/model.js';
import { writeTflite } from '../../src/formats/tflite/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { verifyTflite } from '../../src/pipeline/verify.js';
import { nodeBackend } from '../../src/runtime/node.js';

const backend = nodeBackend();

function f32(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/**
 * y = x · k + b on the last axis of an NHWC (or any) tensor: one MUL and one ADD, or with
 * `int8` a DEQUANTIZE in front and a QUANTIZE behind, so inputs and outputs are int8.
 */
function mulAdd(shape: number[], k: number[], b: number[], int8?: { in: [number, number]; out: [number, number] }): Uint8Array {
  const m: TfliteModel = emptyModel('test');
  m.operatorCodes = [Builtin.MUL, Builtin.ADD, Builtin.DEQUANTIZE, Builtin.QUANTIZE].map((builtinCode) => ({ builtinCode, version: 1 }));
  m.buffers.push(f32(k), f32(b));
  const c = shape[shape.length - 1];
  const t = (name: string, type: TfliteTensor['type'], buffer = 0, dims = shape): TfliteTensor => ({ name, shape: dims, type, buffer });
  const tensors: TfliteTensor[] = [
    t('x', TensorType.FLOAT32),
    t('k', TensorType.FLOAT32, 1, [c]),
    t('b', TensorType.FLOAT32, 2, [c]),
    t('xk', TensorType.FLOAT32),
    t('y', TensorType.FLOAT32),
  ];
  const ops: TfliteModel['subgraphs'][0]['operators'] = [
    {
      opcodeIndex: 0,
      inputs: [0, 1],
      outputs: [3],
      options: { type: 'MulOptions', fields: { fused_activation_function: Activation.NONE } },
    },
    {
      opcodeIndex: 1,
      inputs: [3, 2],
      outputs: [4],
      options: { type: 'AddOptions', fields: { fused_activation_function: Activation.NONE } },
    },
  ];
  let inputs = [0];
  let outputs = [4];
  if (int8) {
    const q = (scale: number, zp: number) => ({ scale: Float32Array.of(scale), zeroPoint: [zp], quantizedDimension: 0 });
    tensors.push(
      { ...t('x_q', TensorType.INT8), quantization: q(...int8.in) },
      { ...t('y_q', TensorType.INT8), quantization: q(...int8.out) },
    );
    ops.unshift({ opcodeIndex: 2, inputs: [5], outputs: [0] });
    ops.push({ opcodeIndex: 3, inputs: [4], outputs: [6] });
    inputs = [5];
    outputs = [6];
  }
  m.subgraphs = [{ tensors, inputs, outputs, operators: ops }];
  return writeTflite(m);
}

/** The same computation in ONNX, channels on axis 1 (`nchw`) or last. */
function mulAddOnnx(shape: (number | string)[], k: number[], b: number[], channelAxis: number, names = ['x', 'y']): Model {
  const mb = new ModelBuilder({ opset: 13 });
  const x = mb.input(names[0], 'float32', shape);
  const bshape = shape.map((_, i) => (i === channelAxis ? k.length : 1)).slice(channelAxis === 0 ? 0 : 1);
  const y = mb.op('Add', [mb.op('Mul', [x, mb.floats('k', bshape, k)]), mb.floats('b', bshape, b)]);
  mb.output(y, names[1]);
  return mb.build();
}

describe('verifyTflite (TFLite interpreter against onnxruntime)', () => {
  const k = [0.5, -2, 3];
  const b = [0.25, 1, -1];

  it('passes a model that computes what its reference does, with every figure', async () => {
    const r = await verifyTflite(mulAdd([2, 3], k, b), mulAddOnnx(['N', 3], k, b, 1), { backend, samples: 2 });
    assert.equal(r.passed, true);
    assert.equal(r.samples, 2);
    assert.equal(r.build, 'simd');
    assert.equal(r.outputs.length, 1);
    const o = r.outputs[0];
    assert.equal(o.name, 'y');
    assert.ok(o.maxAbsDiff <= 1e-6, `max abs ${o.maxAbsDiff}`);
    assert.ok(o.cosine > 0.999999);
    assert.ok(o.sqnrDb > 100);
    assert.equal(o.top1Agreement, 1);
    assert.ok(o.scale > 0.5);
  });

  it('fails a model that computes something else, naming the output', async () => {
    const r = await verifyTflite(mulAdd([2, 3], k, b), mulAddOnnx(['N', 3], [0.5, -2, 3.01], b, 1), { backend });
    assert.equal(r.passed, false);
    assert.equal(r.outputs[0].passed, false);
    assert.ok(r.worst > 1e-4 && r.worst < 0.02, `worst ${r.worst}`);
    // A looser tolerance lets the same difference pass.
    const loose = await verifyTflite(mulAdd([2, 3], k, b), mulAddOnnx(['N', 3], [0.5, -2, 3.01], b, 1), { backend, tolerance: 0.05 });
    assert.equal(loose.passed, true);
  });

  it('transposes NHWC inputs and outputs to the reference NCHW ones', async () => {
    const r = await verifyTflite(mulAdd([1, 4, 5, 3], k, b), mulAddOnnx([1, 3, 4, 5], k, b, 1), { backend });
    assert.equal(r.inputs[0].transposed, true);
    assert.equal(r.passed, true, JSON.stringify(r.outputs));
    assert.ok(r.outputs[0].maxAbsDiff <= 1e-6);
    // Taken as laid out the same (wrongly), the shapes do not fit: one clear line.
    await assert.rejects(
      verifyTflite(mulAdd([1, 4, 5, 3], k, b), mulAddOnnx([1, 3, 4, 5], k, b, 1), { backend, layout: 'same' }),
      (e: unknown) => {
        assert.ok(isMobilizeError(e) && e.exitCode === 2);
        assert.match(e.message, /input "x" .* \[1,4,5,3\], which does not fit the reference input "x" \[1,3,4,5\]/);
        return true;
      },
    );
  });

  it('matches by order when names differ, and says when counts differ', async () => {
    const r = await verifyTflite(mulAdd([2, 3], k, b), mulAddOnnx([2, 3], k, b, 1, ['input', 'output']), { backend });
    assert.deepEqual(
      r.outputs.map((o) => [o.tflite, o.name]),
      [['y', 'output']],
    );
    assert.equal(r.passed, true);
    const two = new ModelBuilder({ opset: 13 });
    const x1 = two.input('x1', 'float32', [2, 3]);
    const x2 = two.input('x2', 'float32', [2, 3]);
    two.output(two.op('Add', [x1, x2]), 'y');
    await assert.rejects(
      verifyTflite(mulAdd([2, 3], k, b), two.build(), { backend }),
      /has 1 inputs \(x\) but the reference has 2 \(x1, x2\)/,
    );
  });

  it('quantizes int8 inputs and dequantizes int8 outputs with their parameters', async () => {
    const int8 = { in: [0.02, -3] as [number, number], out: [0.1, 2] as [number, number] };
    const r = await verifyTflite(mulAdd([2, 3], k, b, int8), mulAddOnnx([2, 3], k, b, 1), { backend, samples: 4, tolerance: 0.02 });
    assert.deepEqual(r.inputs[0].quantized, { scale: Math.fround(0.02), zeroPoint: -3, dtype: 'int8' });
    // Inputs are exact int8 values; the output is rounded to its 0.1 step, at most half a step off.
    const o = r.outputs[0];
    assert.ok(o.maxAbsDiff <= 0.05 + 1e-5, `max abs ${o.maxAbsDiff}`);
    assert.ok(o.maxAbsDiff > 0, 'rounding to int8 shows');
    assert.ok(o.sqnrDb > 20 && o.sqnrDb < 80, `SQNR ${o.sqnrDb}`);
    assert.equal(r.passed, true);
  });
});
