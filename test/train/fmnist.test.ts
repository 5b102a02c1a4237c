/**
 * End to end: the built-in Fashion-MNIST CNN with its BatchNormalizations in training mode and a
 * softmax cross-entropy loss. The gradients of all weights come from one onnxruntime run of the
 * gradient graph and are checked by central differences on a few elements of each weight:
 * against the float32 forward graph on onnxruntime (its rounding and the ReLU/MaxPool kinks
 * limit that check to a few percent), and against the same forward graph in float64 on the
 * reference interpreter (which pins the gradients down to float32 accuracy).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import type { Model, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { assertValid } from '../../src/ir/verify.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { optimize } from '../../src/passes/pipeline.js';
import type { Feeds, Session } from '../../src/runtime/backend.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { referenceBackend } from '../../src/runtime/reference.js';
import { addCrossEntropyLoss, buildGradients, setTrainingMode } from '../../src/train/index.js';
import { Random } from '../../src/util/random.js';

const BATCH = 2;

function clone(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

/** Turns initializers into plain graph inputs (fed on every run, so they can be perturbed). */
function weightsAsInputs(model: Model, names: string[]): Feeds {
  const g = model.graph;
  const feeds: Feeds = {};
  for (const name of names) {
    const v = g.initializers.find((x) => x.name === name) as Value;
    feeds[name] = v.initializer as Tensor;
    v.initializer = undefined;
    g.inputs.push(v);
  }
  g.initializers.splice(0, g.initializers.length, ...g.initializers.filter((v) => v.initializer));
  return feeds;
}

function toFloat64(t: Tensor): Tensor {
  return t.dtype === 'float32' ? Tensor.from('float64', t.dims, Float64Array.from(t.data as Float32Array)) : t;
}

/** The model with float64 weights and inputs (the reference kernels then compute in float64). */
function float64Model(m: Model): Model {
  const c = clone(m);
  for (const v of c.graph.initializers) {
    if (v.initializer?.dtype !== 'float32') continue;
    v.initializer = toFloat64(v.initializer);
    v.type = { kind: 'tensor', dtype: 'float64', shape: [...v.initializer.dims] };
  }
  return c;
}

function perturbed(t: Tensor, i: number, delta: number): Tensor {
  const values = t.dtype === 'float32' ? Float32Array.from(t.data as Float32Array) : Float64Array.from(t.data as Float64Array);
  values[i] += delta;
  return Tensor.from(t.dtype, t.dims, values);
}

async function lossOf(session: Session, feeds: Feeds): Promise<number> {
  return Number((await session.run(feeds, ['loss'])).loss.data[0]);
}

describe('gradients of the fmnist CNN (training-mode BatchNormalization, cross-entropy)', () => {
  let forward: Model;
  let gradModel: Model;
  let weights: string[];
  let feeds: Feeds;
  let analytic: Record<string, Float32Array>;
  let gradNames: string[];
  const rng = new Random(11);

  before(async () => {
    const model = buildFmnistCnn(5);
    const bn = setTrainingMode(model);
    assert.equal(bn.batchNorms.length, 2);
    addCrossEntropyLoss(model, 'logits');
    weights = model.graph.initializers.filter((v) => !/\.bn\.(mean|var)$/.test(v.name)).map((v) => v.name);
    const weightFeeds = weightsAsInputs(model, weights);
    forward = clone(model);
    const result = buildGradients(model, 'loss', weights);
    gradModel = model;
    gradNames = result.gradients.map((g) => g.name);
    assert.deepEqual(
      gradNames,
      weights.map((w) => `${w}_grad`),
    );
    assert.deepEqual(result.unreached, []);
    feeds = {
      ...weightFeeds,
      input: Tensor.from(
        'float32',
        [BATCH, 1, 28, 28],
        Float32Array.from({ length: BATCH * 784 }, () => rng.next()),
      ),
      labels: Tensor.from(
        'int64',
        [BATCH],
        Array.from({ length: BATCH }, () => rng.int(0, 10)),
      ),
    };
    const session = await nodeBackend().createSession(gradModel);
    const out = await session.run(feeds, gradNames);
    await session.release();
    analytic = Object.fromEntries(weights.map((w, k) => [w, out[gradNames[k]].data as Float32Array]));
  });

  it('is a valid model of standard ONNX ops, with no gradient for the input or the running statistics', () => {
    assertValid(gradModel, 'gradient model', { registry: defaultRegistry() });
    for (const n of gradModel.graph.nodes) assert.ok(n.domain === '' || n.domain === 'ai.onnx', `${n.describe()} is not a standard op`);
    const outputs = gradModel.graph.outputs.map((v) => v.name);
    assert.ok(!outputs.some((n) => /input_grad|bn\.(mean|var)_grad/.test(n)));
    // conv1's input gradient would be a third ConvTranspose: pruned, as X needs none.
    assert.equal(gradModel.graph.nodes.filter((n) => n.opType === 'ConvTranspose').length, 1);
  });

  /** A few elements of each weight: the largest-gradient one and two at random. */
  function picks(w: string): number[] {
    const g = analytic[w];
    let best = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[best])) best = i;
    return [...new Set([best, rng.int(0, g.length), rng.int(0, g.length)])];
  }

  /** Worst error of the analytic gradient against central differences over `session`. */
  async function check(session: Session, base: Feeds, step: number): Promise<Record<string, number>> {
    const globalMax = Math.max(...weights.map((w) => Math.max(...Array.from(analytic[w], Math.abs))));
    const worst: Record<string, number> = {};
    for (const w of weights) {
      const tensorMax = Math.max(...Array.from(analytic[w], Math.abs));
      // Gradients of ~0 (the conv biases ahead of BatchNormalization, exactly 0 in theory) are
      // compared on the scale of the others.
      const floor = Math.max(1e-2 * tensorMax, 1e-2 * globalMax);
      let e = 0;
      for (const i of picks(w)) {
        const up = await lossOf(session, { ...base, [w]: perturbed(base[w], i, step) });
        const down = await lossOf(session, { ...base, [w]: perturbed(base[w], i, -step) });
        const numeric = (up - down) / (2 * step);
        e = Math.max(e, Math.abs(analytic[w][i] - numeric) / Math.max(Math.abs(numeric), Math.abs(analytic[w][i]), floor));
      }
      worst[w] = e;
    }
    return worst;
  }

  it('matches central differences of the float64 forward graph (reference interpreter)', async () => {
    const session = await referenceBackend().createSession(float64Model(forward));
    const base = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toFloat64(t)]));
    const worst = await check(session, base, 1e-6);
    console.log(`# float64 reference differences, worst relative error per weight: ${JSON.stringify(worst)}`);
    for (const [w, e] of Object.entries(worst)) assert.ok(e < 1e-4, `${w}: ${e}`);
  });

  /**
   * float32 needs a step of ~1e-2 to rise above rounding, and at that step conv1's parameters
   * move ~50 000 ReLU and MaxPool kinks downstream: their differences are off by tens of percent
   * (the float64 reference agrees with onnxruntime at that step, and with the analytic gradient
   * at 1e-6). So only the layers after conv1 are held to a tolerance here; conv1's are printed.
   */
  it('matches central differences of the float32 forward graph on onnxruntime (after conv1)', async () => {
    const session = await nodeBackend().createSession(forward);
    const worst = await check(session, feeds, 1e-2);
    await session.release();
    console.log(`# float32 onnxruntime differences, worst relative error per weight: ${JSON.stringify(worst)}`);
    for (const [w, e] of Object.entries(worst)) if (!w.startsWith('conv1.')) assert.ok(e < 2e-2, `${w}: ${e}`);
  });

  it('gives the same gradients after the optimizer has run over the gradient graph', async () => {
    const optimized = clone(gradModel);
    optimize(optimized);
    const session = await nodeBackend().createSession(optimized);
    const out = await session.run(feeds, gradNames);
    await session.release();
    weights.forEach((w, k) => {
      const a = analytic[w];
      const b = out[gradNames[k]].data as Float32Array;
      const scale = Math.max(...Array.from(a, Math.abs), 1e-6);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * scale, `${w}[${i}]: ${a[i]} vs ${b[i]}`);
    });
  });
});
