/**
 * Speed is part of correctness: a QDQ group onnxruntime does not fuse runs slower than float.
 * These tests quantize small models, let onnxruntime optimise them and save the graph it will
 * run (optimizedModelFilePath), and check that no float Conv, Gemm or MatMul is left.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model, Value } from '../../src/ir/graph.js';
import { quantizeModel } from '../../src/quantize/index.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { tmpDir } from '../helpers.js';
import { calibData, ops, residualNet, uniform } from './helpers.js';

const backend = nodeBackend();

/** The graph onnxruntime runs, after its own optimisations ('all'). */
async function ortOptimized(m: Model): Promise<Model> {
  const path = join(tmpDir(), 'ort-optimized.onnx');
  const s = await backend.createSession(m, { optimizedModelPath: path });
  await s.release();
  return readOnnx(readFileSync(path));
}

function floatCompute(m: Model): string[] {
  return m.graph.nodes
    .filter((n) => (n.domain === '' || n.domain === 'ai.onnx') && ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.opType))
    .map((n) => n.describe());
}

/** An inverted-residual block as MobileNetV2 has it: 1×1 expand, Clip(0,6), depthwise 3×3, Clip, 1×1 project, + input. */
function invertedResidual(): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 8, 8, 8]);
  const stem = b.op('Conv', [x, b.constant('w0', uniform([8, 8, 1, 1], 0.5, 1)), b.constant('b0', uniform([8], 0.1, 2))], {
    kernel_shape: [1, 1],
  });
  const relu6 = (v: Value): Value => b.op('Clip', [v, b.floats(`lo${v.name}`, [], [0]), b.floats(`hi${v.name}`, [], [6])]);
  const h0 = relu6(stem);
  const e = relu6(
    b.op('Conv', [h0, b.constant('w1', uniform([24, 8, 1, 1], 0.5, 3)), b.constant('b1', uniform([24], 0.1, 4))], { kernel_shape: [1, 1] }),
  );
  // The bias of the depthwise conv arrives through an Identity, as some exporters write it.
  const dwBias = b.op('Identity', [b.constant('b2', uniform([24], 0.1, 5))]);
  const d = relu6(
    b.op('Conv', [e, b.constant('w2', uniform([24, 1, 3, 3], 0.5, 6)), dwBias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 24 }),
  );
  const p = b.op('Conv', [d, b.constant('w3', uniform([8, 24, 1, 1], 0.5, 7)), b.constant('b3', uniform([8], 0.1, 8))], {
    kernel_shape: [1, 1],
  });
  const sum = b.op('Add', [p, h0]);
  const g = b.op('Flatten', [b.op('GlobalAveragePool', [sum])], { axis: 1 });
  b.output(b.op('Gemm', [g, b.constant('fc', uniform([4, 8], 0.5, 9))], { transB: 1 }), 'y');
  return b.build();
}

function mlp(): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 16]);
  const h = b.op('Relu', [b.op('MatMul', [x, b.constant('w1', uniform([16, 32], 0.5, 1))])]);
  b.output(b.op('MatMul', [h, b.constant('w2', uniform([32, 4], 0.5, 2))]), 'y');
  return b.build();
}

describe('onnxruntime fuses the QDQ graphs (uint8 activations, int8 weights)', () => {
  it('residual CNN: every Conv becomes QLinearConv, Add QLinearAdd, Gemm QGemm', async () => {
    const m = residualNet();
    await quantizeModel(m, { calib: calibData(16, [3, 8, 8]), backend });
    const opt = await ortOptimized(m);
    assert.deepEqual(floatCompute(opt), [], JSON.stringify(ops(opt)));
    const o = ops(opt);
    assert.equal(o['com.microsoft.QLinearConv'], 2, JSON.stringify(o));
    assert.equal(o['com.microsoft.QLinearAdd'], 1);
    assert.equal(o['com.microsoft.QGemm'], 1);
    // Only the input is quantized at run time: the rest stays in 8 bits.
    assert.equal(o.QuantizeLinear, 1);
  });

  it('inverted residual with Clip(0,6) and an Identity-fed bias: all convolutions fused', async () => {
    const m = invertedResidual();
    await quantizeModel(m, { calib: calibData(16, [8, 8, 8]), backend });
    const opt = await ortOptimized(m);
    assert.deepEqual(floatCompute(opt), [], JSON.stringify(ops(opt)));
    assert.equal(ops(opt)['com.microsoft.QLinearConv'], 4);
  });

  it('MatMul with constant weights: QLinearMatMul, or MatMulIntegerToFloat for the float output', async () => {
    const m = mlp();
    await quantizeModel(m, { calib: calibData(16, [16]), backend });
    const opt = await ortOptimized(m);
    assert.deepEqual(floatCompute(opt), [], JSON.stringify(ops(opt)));
  });
});
