/**
 * The training graph: one onnxruntime run of it must move the weights exactly as the optimizer
 * formulas say. A tiny linear classifier (Gemm + cross-entropy) has gradients simple enough to
 * work out by hand in float64 here — dZ = (softmax(z) − onehot)/N, dW = dZᵀx, db = Σ dZ — and
 * two steps are taken so that momentum, Adam's moments and its bias corrections all matter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import type { OrtModule } from '../../src/runtime/ort.js';
import { type OptimizerConfig, resolveOptimizer } from '../../src/train/optimizer.js';
import { buildTrainingStep, type TrainingStepOptions } from '../../src/train/step.js';
import { TrainingSession } from '../../src/train/trainer.js';

const ORT = ort as unknown as OrtModule;
const N = 4;
const IN = 3;
const OUT = 2;
const W0 = [0.5, -0.3, 0.8, -0.6, 0.2, 0.1];
const B0 = [0.05, -0.1];
const X = [
  [1, 2, -1],
  [0.5, -1, 2],
  [-2, 0.3, 0.7],
  [1.5, 1, 0.2],
];
const Y = [0, 1, 1, 0];

/** x [N, 3] → Gemm(W [2, 3], b [2], transB) → logits. */
function linearModel(): Model {
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('input', 'float32', ['N', IN]);
  const w = b.floats('w', [OUT, IN], W0);
  const bias = b.floats('b', [OUT], B0);
  b.output(b.op('Gemm', [x, w, bias], { transB: 1 }, { name: 'fc' }), 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', OUT] });
  return b.build();
}

/** Gradients of mean cross-entropy of the linear model, in float64. */
function gradients(w: number[], bias: number[]): { dw: number[]; db: number[]; loss: number } {
  const dw = new Array(OUT * IN).fill(0);
  const db = new Array(OUT).fill(0);
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const z = [0, 1].map((o) => bias[o] + X[i].reduce((s, xv, k) => s + xv * w[o * IN + k], 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e[0] + e[1];
    loss -= Math.log(e[Y[i]] / sum) / N;
    for (let o = 0; o < OUT; o++) {
      const dz = (e[o] / sum - (Y[i] === o ? 1 : 0)) / N;
      db[o] += dz;
      for (let k = 0; k < IN; k++) dw[o * IN + k] += dz * X[i][k];
    }
  }
  return { dw, db, loss };
}

/** The optimizer's update by hand (PyTorch's formulas) over `steps` steps. */
function handSteps(config: OptimizerConfig, lrs: number[]): { w: number[]; b: number[]; losses: number[] } {
  const c = resolveOptimizer(config);
  const params = [[...W0], [...B0]];
  const buf = params.map((p) => p.map(() => 0));
  const m = params.map((p) => p.map(() => 0));
  const v = params.map((p) => p.map(() => 0));
  const losses: number[] = [];
  lrs.forEach((lr, step) => {
    const { dw, db, loss } = gradients(params[0], params[1]);
    losses.push(loss);
    [dw, db].forEach((grad, p) => {
      for (let i = 0; i < grad.length; i++) {
        let g = grad[i];
        const x = params[p][i];
        if (c.kind !== 'adamw') g += c.weightDecay * x;
        if (c.kind === 'sgd') {
          buf[p][i] = c.momentum * buf[p][i] + g;
          const d = c.momentum === 0 ? g : c.nesterov ? g + c.momentum * buf[p][i] : buf[p][i];
          params[p][i] = x - lr * d;
        } else {
          const t = step + 1;
          m[p][i] = c.beta1 * m[p][i] + (1 - c.beta1) * g;
          v[p][i] = c.beta2 * v[p][i] + (1 - c.beta2) * g * g;
          const decayed = c.kind === 'adamw' ? x * (1 - lr * c.weightDecay) : x;
          const denom = Math.sqrt(v[p][i]) / Math.sqrt(1 - c.beta2 ** t) + c.eps;
          params[p][i] = decayed - (lr / (1 - c.beta1 ** t)) * (m[p][i] / denom);
        }
      }
    });
  });
  return { w: params[0], b: params[1], losses };
}

async function graphSteps(options: TrainingStepOptions, lrs: number[]): Promise<{ w: number[]; b: number[]; losses: number[] }> {
  const step = buildTrainingStep(linearModel(), options);
  const session = await TrainingSession.create(ORT, step);
  const input = Tensor.from('float32', [N, IN], X.flat());
  const losses: number[] = [];
  for (const lr of lrs) losses.push((await session.run(input, Y, lr)).loss);
  // Read back from the exported inference model: it holds frozen weights too.
  const exported = session.exportModel();
  await session.release();
  const get = (name: string): number[] => numbers(exported.graph.initializers.find((v) => v.name === name)?.initializer);
  return { w: get('w'), b: get('b'), losses };
}

function numbers(t: Tensor | undefined): number[] {
  assert.ok(t, 'the value exists');
  return [...(t.data as Float32Array)];
}

function close(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${a} vs ${expected[i]}`);
  });
}

describe('training step graph: updates against hand computations', () => {
  const cases: Array<[string, OptimizerConfig]> = [
    ['plain SGD', { kind: 'sgd', momentum: 0 }],
    ['SGD with momentum and weight decay', { kind: 'sgd', momentum: 0.9, weightDecay: 0.01 }],
    ['SGD with Nesterov momentum', { kind: 'sgd', momentum: 0.8, nesterov: true }],
    ['Adam with L2 weight decay', { kind: 'adam', weightDecay: 0.05 }],
    ['AdamW (decoupled weight decay)', { kind: 'adamw', weightDecay: 0.1, beta2: 0.99 }],
  ];
  for (const [name, config] of cases) {
    it(`${name}: two steps match the formulas`, async () => {
      const lrs = [0.1, 0.05];
      const got = await graphSteps({ optimizer: config }, lrs);
      const want = handSteps(config, lrs);
      close(got.losses, want.losses, 1e-5, 'loss');
      close(got.w, want.w, 2e-6, 'w');
      close(got.b, want.b, 2e-6, 'b');
    });
  }

  it('keeps frozen weights fixed and lists them', async () => {
    const step = buildTrainingStep(linearModel(), { optimizer: { kind: 'sgd' }, freeze: ['b'] });
    assert.deepEqual(step.weights, ['w']);
    assert.deepEqual(step.frozen, ['b']);
    const got = await graphSteps({ optimizer: { kind: 'sgd', momentum: 0 }, freeze: ['b'] }, [0.1]);
    close(got.b, B0.map(Math.fround), 0, 'b');
    const { dw } = gradients(W0, B0);
    close(
      got.w,
      W0.map((w, i) => w - 0.1 * dw[i]),
      1e-6,
      'w',
    );
    assert.throws(() => buildTrainingStep(linearModel(), { optimizer: { kind: 'sgd' }, freeze: ['nope'] }), {
      message: '--freeze nope: the model has no initializer of that name',
    });
  });

  it('feeds weights as plain inputs and returns every state value as an output', () => {
    const step = buildTrainingStep(buildFmnistCnn(1), { optimizer: { kind: 'adam' } });
    const g = step.model.graph;
    const inputs = new Set(g.inputs.map((v) => v.name));
    const outputs = new Set(g.outputs.map((v) => v.name));
    for (const s of step.state) {
      assert.ok(inputs.has(s.name), `${s.name} is an input`);
      assert.ok(outputs.has(s.next), `${s.next} is an output`);
      assert.ok(!g.initializers.some((v) => v.name === s.name), `${s.name} has no initializer`);
    }
    assert.deepEqual(
      step.state.filter((s) => s.role === 'running-stat').map((s) => s.name),
      ['conv1.bn.mean', 'conv1.bn.var', 'conv2.bn.mean', 'conv2.bn.var'],
    );
    // Adam: m and v per weight, and the step count.
    assert.equal(step.state.filter((s) => s.role === 'optimizer').length, 2 * step.weights.length + 1);
    assert.equal(step.weights.length, 10);
    // The inference model keeps BatchNormalization in inference mode.
    for (const n of step.inference.graph.nodes) assert.ok(!n.int('training_mode'), `${n.describe()} is in inference mode`);
  });

  it('updates the running statistics as onnxruntime defines them (momentum 0.9, biased batch variance)', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('input', 'float32', ['N', IN]);
    const bn = b.op(
      'BatchNormalization',
      [
        x,
        b.floats('s', [IN], [1, 1, 1]),
        b.floats('o', [IN], [0, 0, 0]),
        b.floats('mean', [IN], [0.5, 0, -1]),
        b.floats('var', [IN], [2, 1, 1]),
      ],
      {},
      { name: 'bn' },
    );
    const w = b.floats('w', [OUT, IN], W0);
    b.output(b.op('Gemm', [bn, w], { transB: 1 }), 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', OUT] });
    const step = buildTrainingStep(b.build(), { optimizer: { kind: 'sgd' } });
    const session = await TrainingSession.create(ORT, step);
    await session.run(Tensor.from('float32', [N, IN], X.flat()), Y, 0.1);
    const values = session.values();
    await session.release();
    const mean = [0, 1, 2].map((k) => X.reduce((s, r) => s + r[k], 0) / N);
    const variance = [0, 1, 2].map((k) => X.reduce((s, r) => s + (r[k] - mean[k]) ** 2, 0) / N);
    close(
      numbers(values.get('mean')),
      [0.5, 0, -1].map((m, k) => 0.9 * m + 0.1 * mean[k]),
      1e-6,
      'running mean',
    );
    close(
      numbers(values.get('var')),
      [2, 1, 1].map((v, k) => 0.9 * v + 0.1 * variance[k]),
      1e-6,
      'running var',
    );
  });

  it('names the node when an op on the path has no gradient rule', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('input', 'float32', ['N', IN]);
    const h = b.op('Gemm', [x, b.floats('w', [OUT, IN], W0)], { transB: 1 });
    const c = b.op('CumSum', [h, b.ints('axis', [1], [])], {}, { name: 'running_total' });
    b.output(c, 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', OUT] });
    assert.throws(() => buildTrainingStep(b.build(), { optimizer: { kind: 'adamw' } }), {
      name: 'MobilizeError',
      message: 'no gradient rule for CumSum node "running_total"',
    });
  });
});

describe('losses', () => {
  /** Student logits s, teacher logits t (both [2, 3]) and labels for the hand computations. */
  const S = [
    [1.2, -0.4, 0.3],
    [-0.7, 0.9, 2.1],
  ];
  /** The teacher is x·A: its logits T_ = S·A. */
  const A = [
    [1.5, -0.2, 0.4],
    [0.3, 0.8, -0.5],
    [-0.6, 0.1, 1.2],
  ];
  const T_ = S.map((row) => [0, 1, 2].map((j) => row.reduce((acc, v, k) => acc + v * A[k][j], 0)));
  const L = [0, 2];

  function softmax(z: number[], temp: number): number[] {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp((v - m) / temp));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }

  /** A model whose logits are s · w for a scalar weight w = 1: the loss is that of S, and dL/dw = Σ s·dL/ds. */
  function scaled(): Model {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('input', 'float32', ['N', 3]);
    const w = b.floats('w', [1, 3], [1, 1, 1]);
    b.output(b.op('Mul', [x, w], {}, { name: 'scale' }), 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', 3] });
    return b.build();
  }

  function linearTeacher(): Model {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('input', 'float32', ['N', 3]);
    b.output(b.op('MatMul', [x, b.floats('a', [3, 3], A.flat())]), 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', 3] });
    return b.build();
  }

  it('distillation: α·T²·(−Σ q log p) + (1−α)·CE, and its gradient, match a hand computation', async () => {
    const temperature = 3;
    const alpha = 0.6;
    const step = buildTrainingStep(scaled(), {
      optimizer: { kind: 'sgd', momentum: 0 },
      distill: { teacher: linearTeacher(), temperature, alpha },
    });
    assert.deepEqual(step.lossParts, ['kd_loss', 'ce_loss']);
    const session = await TrainingSession.create(ORT, step);
    const lr = 0.5;
    const r = await session.run(Tensor.from('float32', [2, 3], S.flat()), L, lr);
    const w = numbers(session.values().get('w'));
    await session.release();

    let kd = 0;
    let ce = 0;
    const dw = [0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const q = softmax(T_[i], temperature);
      const pT = softmax(S[i], temperature);
      const p1 = softmax(S[i], 1);
      kd -= q.reduce((a, qi, j) => a + qi * Math.log(pT[j]), 0) / 2;
      ce -= Math.log(p1[L[i]]) / 2;
      for (let j = 0; j < 3; j++) {
        // d/ds of α·T²·KD is α·T·(p_T − q)/N; of (1−α)·CE it is (1−α)(p − onehot)/N; ds/dw = s.
        const ds = (alpha * temperature * (pT[j] - q[j]) + (1 - alpha) * (p1[j] - (L[i] === j ? 1 : 0))) / 2;
        dw[j] += ds * S[i][j];
      }
    }
    close([r.parts.kd_loss, r.parts.ce_loss, r.loss], [kd, ce, alpha * temperature ** 2 * kd + (1 - alpha) * ce], 1e-5, 'losses');
    close(
      w,
      dw.map((d) => 1 - lr * d),
      1e-5,
      'w after one SGD step',
    );
  });

  it('mse against one-hot labels: mean of (y − onehot)², and its gradient', async () => {
    const step = buildTrainingStep(scaled(), { optimizer: { kind: 'sgd', momentum: 0 }, loss: 'mse' });
    const session = await TrainingSession.create(ORT, step);
    const r = await session.run(Tensor.from('float32', [2, 3], S.flat()), L, 1);
    const w = numbers(session.values().get('w'));
    await session.release();
    let loss = 0;
    const dw = [0, 0, 0];
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        const d = S[i][j] - (L[i] === j ? 1 : 0);
        loss += (d * d) / 6;
        dw[j] += ((2 * d) / 6) * S[i][j];
      }
    }
    close([r.loss], [loss], 1e-6, 'mse');
    close(
      w,
      dw.map((d) => 1 - d),
      1e-5,
      'w',
    );
  });
});
