/**
 * Quantization-aware training's conversions (src/train/fake-quant.ts) on a QDQ model written by
 * static int8 quantization: the trainable form computes what the QDQ model computes, folding it
 * back untrained gives the same integers, and training it moves weights but keeps every quantized
 * weight on its grid.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { FashionMnist } from '../../src/data/fashion-mnist.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import type { Model } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { assertValid } from '../../src/ir/verify.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { quantizeModel } from '../../src/quantize/index.js';
import { nodeBackend } from '../../src/runtime/node.js';
import type { OrtModule } from '../../src/runtime/ort.js';
import { fromFakeQuant, toFakeQuant } from '../../src/train/fake-quant.js';
import { train } from '../../src/train/trainer.js';

const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);

/** Integer initializer behind each DequantizeLinear, by node name. */
function dequantized(m: Model): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const n of m.graph.nodes) {
    const t = n.input(0)?.initializer;
    if (n.opType === 'DequantizeLinear' && t) out.set(n.name, t);
  }
  return out;
}

async function logits(m: Model, input: Tensor): Promise<Float32Array> {
  const s = await nodeBackend().createSession(m, { optimization: 'disabled' });
  try {
    return (await s.run({ input }, ['logits'])).logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('quantization-aware training: fake quantization', () => {
  let data: FashionMnist;
  let qdq: Model;

  before(async () => {
    data = new FashionMnist('train');
    // A briefly trained float model (BatchNormalization statistics that are not the identity).
    const float = (
      await train({ ort: ort as unknown as OrtModule, model: buildFmnistCnn(2), data, epochs: 1, limit: 512, batchSize: 64, lr: 0.01 })
    ).model;
    qdq = copy(float);
    await quantizeModel(qdq, { scheme: 'int8', calib: data, calibSize: 64, backend: nodeBackend() });
  });

  it('makes a trainable form that computes what the QDQ model computes', async () => {
    const fq = copy(qdq);
    const plan = toFakeQuant(fq);
    assertValid(fq, 'fake-quant model', { registry: defaultRegistry() });
    assert.deepEqual(plan.weights.sort(), ['conv1.weight_fused', 'conv2.weight_fused', 'fc.weight'].sort());
    assert.equal(plan.biases.length, 3);
    // Per-channel weight scales are fixed; every weight's integers now come from a QuantizeLinear.
    assert.equal(plan.fixed.length, 3);
    const qs = fq.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' && n.input(0)?.initializer);
    assert.equal(qs.length, 3);
    for (const n of fq.graph.nodes.filter((x) => x.opType === 'DequantizeLinear')) {
      assert.ok(!n.input(0)?.initializer, `${n.describe()} reads no integer constant any more`);
    }
    const batch = data.batchSync(Int32Array.from({ length: 32 }, (_, i) => 1000 + i)).input;
    const a = await logits(qdq, batch);
    const b = await logits(fq, batch);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-3, `largest logit difference ${worst}`);
  });

  it('folds back untrained to the same integers', () => {
    const fq = copy(qdq);
    const plan = toFakeQuant(fq);
    fromFakeQuant(fq, plan);
    assertValid(fq, 'folded model', { registry: defaultRegistry() });
    const want = dequantized(qdq);
    const got = dequantized(fq);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [name, t] of want) {
      const g = got.get(name) as Tensor;
      assert.equal(g.dtype, t.dtype, name);
      assert.deepEqual([...g.dims], [...t.dims], name);
      assert.deepEqual(g.data, t.data, `${name}: the same integers`);
    }
    assert.equal(
      fq.graph.nodes.filter((n) => n.opType === 'QuantizeLinear').length,
      qdq.graph.nodes.filter((n) => n.opType === 'QuantizeLinear').length,
    );
  });

  it('trains through QuantizeLinear: weights move, scales stay, int8 weights stay within ±127', async () => {
    const fq = copy(qdq);
    const plan = toFakeQuant(fq);
    const report = await train({
      ort: ort as unknown as OrtModule,
      model: fq,
      data,
      epochs: 1,
      limit: 256,
      batchSize: 64,
      lr: 1e-3,
      freeze: plan.fixed,
    });
    assert.deepEqual(report.weights.sort(), [...plan.weights, ...plan.biases.map((b) => b.name)].sort());
    const trained = report.model;
    fromFakeQuant(trained, plan);
    const before = dequantized(qdq);
    const after = dequantized(trained);
    let changed = 0;
    for (const [name, t] of after) {
      const old = before.get(name) as Tensor;
      assert.equal(t.dtype, old.dtype);
      if (t.dtype === 'int8' && t.size > 1)
        assert.ok(
          (t.data as Int8Array).every((q) => q >= -127),
          `${name} keeps −128 out`,
        );
      for (let i = 0; i < t.size; i++) if (t.data[i] !== old.data[i]) changed++;
    }
    assert.ok(changed > 100, `${changed} integers changed`);
    for (const s of plan.fixed) {
      const was = qdq.graph.initializers.find((v) => v.name === s)?.initializer;
      const now = trained.graph.initializers.find((v) => v.name === s)?.initializer;
      assert.deepEqual(now?.data, was?.data, `scale ${s} is fixed`);
    }
  });
});
