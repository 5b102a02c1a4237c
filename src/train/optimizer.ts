/**
 * Optimizers as standard ONNX nodes at the end of a training graph, and learning-rate schedules.
 *
 * Each weight w with gradient g gets its update as a handful of elementwise nodes; the optimizer
 * state (SGD's momentum buffer, Adam's m and v, the step count) enters as graph inputs and leaves
 * as outputs, fed back by the loop on the next step. The learning rate is a scalar input, so a
 * schedule costs nothing in the graph. The updates follow PyTorch's torch.optim formulas (with
 * its defaults), so a step can be checked against a hand computation or against PyTorch:
 *
 *   SGD:   g ← g + λw;  b ← μb + g;  d = nesterov ? g + μb : b;  w ← w − lr·d
 *   Adam:  g ← g + λw;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  t ← t + 1
 *          w ← w − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)
 *   AdamW: as Adam without λw in g, and w ← w·(1 − lr·λ) before the step (decoupled decay)
 *
 * Browser-safe.
 */
import { badInput } from '../errors.js';
import type { Graph, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { Emitter } from './emit.js';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

export interface OptimizerConfig {
  kind: OptimizerKind;
  /** SGD momentum μ (default 0.9; 0 is plain SGD). */
  momentum?: number;
  /** Nesterov momentum for SGD (default off). */
  nesterov?: boolean;
  /** Adam's β₁, β₂ and ε (defaults 0.9, 0.999, 1e-8). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * Weight decay λ: added to the gradient as λw for sgd and adam (L2), decoupled for adamw.
   * Default 0, and 0.01 for adamw (PyTorch's defaults).
   */
  weightDecay?: number;
}

/** A value the loop feeds in and reads back each step: its initial value, and the output holding the next one. */
export interface StateSlot {
  /** Graph input. */
  name: string;
  /** Graph output holding the value after this step. */
  next: string;
  init: Tensor;
  role: 'weight' | 'running-stat' | 'optimizer';
}

/** The configuration with every default filled in (what a report shows). */
export function resolveOptimizer(c: OptimizerConfig): Required<OptimizerConfig> {
  const out: Required<OptimizerConfig> = {
    kind: c.kind,
    momentum: c.momentum ?? 0.9,
    nesterov: c.nesterov ?? false,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    eps: c.eps ?? 1e-8,
    weightDecay: c.weightDecay ?? (c.kind === 'adamw' ? 0.01 : 0),
  };
  if (!['sgd', 'adam', 'adamw'].includes(out.kind)) throw badInput(`optimizer ${String(out.kind)}: expected sgd, adam or adamw`);
  const check = (what: string, x: number, lo: number, hi: number, hiOpen = true): void => {
    if (!Number.isFinite(x) || x < lo || (hiOpen ? x >= hi : x > hi))
      throw badInput(`${what} ${x}: expected a number in [${lo}, ${hi}${hiOpen ? ')' : ']'}`);
  };
  check('momentum', out.momentum, 0, 1);
  check('beta1', out.beta1, 0, 1);
  check('beta2', out.beta2, 0, 1);
  check('eps', out.eps, 0, 1, false);
  check('weight decay', out.weightDecay, 0, 1, false);
  if (out.nesterov && (out.kind !== 'sgd' || out.momentum === 0))
    throw badInput('Nesterov momentum needs --optimizer sgd with a momentum above 0');
  return out;
}

export interface OptimizerNodes {
  /** The updated value of each weight, in order. */
  updated: Value[];
  /** Optimizer state the loop feeds back (the step count, momentum buffers, m and v). */
  state: Array<{ input: Value; next: Value; init: Tensor }>;
}

/**
 * Appends the update of each weight (a graph input) given its gradient, reading the learning
 * rate from the scalar input `lr`. New state inputs are named after their weight
 * (`conv1.weight.m`, `conv1.weight.momentum`) and `optimizer.step`.
 */
export function addOptimizer(
  graph: Graph,
  weights: ReadonlyArray<{ weight: Value; grad: Value }>,
  lr: Value,
  config: OptimizerConfig,
): OptimizerNodes {
  const c = resolveOptimizer(config);
  const e = new Emitter(graph, 'optimizer');
  const state: OptimizerNodes['state'] = [];
  const stateInput = (name: string, like: Tensor): Value =>
    graph.addInput(name, { kind: 'tensor', dtype: 'float32', shape: [...like.dims] });
  const zerosLike = (w: Value): Tensor => {
    const t = w.type;
    const dims = t?.kind === 'tensor' && t.shape?.every((d) => typeof d === 'number') ? (t.shape as number[]) : undefined;
    if (!dims) throw badInput(`weight ${w.name} has no fixed shape; training needs it`);
    return Tensor.zeros('float32', dims);
  };
  const decayed = (w: Value, g: Value): Value =>
    c.weightDecay > 0 && c.kind !== 'adamw' ? e.op('Add', [g, e.op('Mul', [w, e.scalar(c.weightDecay)])]) : g;

  const updated: Value[] = [];
  if (c.kind === 'sgd') {
    for (const { weight: w, grad } of weights) {
      const g = decayed(w, grad);
      let d = g;
      if (c.momentum > 0) {
        const init = zerosLike(w);
        const buf = stateInput(`${w.name}.momentum`, init);
        const next = e.op('Add', [e.op('Mul', [buf, e.scalar(c.momentum)]), g]);
        state.push({ input: buf, next, init });
        d = c.nesterov ? e.op('Add', [g, e.op('Mul', [next, e.scalar(c.momentum)])]) : next;
      }
      updated.push(e.op('Sub', [w, e.op('Mul', [d, lr])]));
    }
    return { updated, state };
  }

  // Adam and AdamW: the step count t and the bias corrections, once for all weights.
  const stepInit = Tensor.from('float32', [], [0]);
  const step = graph.addInput('optimizer.step', { kind: 'tensor', dtype: 'float32', shape: [] });
  const t = e.op('Add', [step, e.scalar(1)]);
  state.push({ input: step, next: t, init: stepInit });
  const bc1 = e.op('Sub', [e.scalar(1), e.op('Pow', [e.scalar(c.beta1), t])]);
  const bc2 = e.op('Sub', [e.scalar(1), e.op('Pow', [e.scalar(c.beta2), t])]);
  const stepSize = e.op('Div', [lr, bc1]);
  const invSqrtBc2 = e.op('Reciprocal', [e.op('Sqrt', [bc2])]);
  const shrink =
    c.kind === 'adamw' && c.weightDecay > 0 ? e.op('Sub', [e.scalar(1), e.op('Mul', [lr, e.scalar(c.weightDecay)])]) : undefined;
  for (const { weight: w, grad } of weights) {
    const g = decayed(w, grad);
    const init = zerosLike(w);
    const m = stateInput(`${w.name}.m`, init);
    const v = stateInput(`${w.name}.v`, init);
    const mNext = e.op('Add', [e.op('Mul', [m, e.scalar(c.beta1)]), e.op('Mul', [g, e.scalar(1 - c.beta1)])]);
    const vNext = e.op('Add', [e.op('Mul', [v, e.scalar(c.beta2)]), e.op('Mul', [e.op('Mul', [g, g]), e.scalar(1 - c.beta2)])]);
    state.push({ input: m, next: mNext, init }, { input: v, next: vNext, init });
    const denom = e.op('Add', [e.op('Mul', [e.op('Sqrt', [vNext]), invSqrtBc2]), e.scalar(c.eps)]);
    const delta = e.op('Mul', [e.op('Div', [mNext, denom]), stepSize]);
    updated.push(e.op('Sub', [shrink ? e.op('Mul', [w, shrink]) : w, delta]));
  }
  return { updated, state };
}

// ---------------------------------------------------------------- learning-rate schedules

export type ScheduleKind = 'none' | 'cosine' | 'step';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Linear warm-up over this many steps, from lr/warmup up to lr (default 0). */
  warmup?: number;
  /** Step schedule: multiply by `gamma` every `stepEpochs` epochs (defaults 0.1 and 1). */
  gamma?: number;
  stepEpochs?: number;
  /** Cosine schedule: the rate it ends at, as a fraction of lr (default 0). */
  minFactor?: number;
}

/**
 * The learning rate of step `k` (0-based) of `total`, with `perEpoch` steps an epoch. Warm-up
 * ramps linearly ((k+1)/warmup · lr, as PyTorch's LinearLR from 1/warmup); cosine then anneals
 * from lr to minFactor·lr over the remaining steps; step multiplies by gamma every stepEpochs epochs.
 */
export function learningRate(lr: number, s: ScheduleConfig, k: number, total: number, perEpoch: number): number {
  const warmup = Math.min(s.warmup ?? 0, total);
  if (k < warmup) return (lr * (k + 1)) / warmup;
  switch (s.kind) {
    case 'none':
      return lr;
    case 'step': {
      const every = Math.max(1, s.stepEpochs ?? 1) * perEpoch;
      return lr * (s.gamma ?? 0.1) ** Math.floor(k / every);
    }
    case 'cosine': {
      const span = Math.max(1, total - warmup);
      const min = (s.minFactor ?? 0) * lr;
      return min + 0.5 * (lr - min) * (1 + Math.cos((Math.PI * Math.min(k - warmup, span)) / span));
    }
    default:
      throw badInput(`schedule ${String(s.kind)}: expected cosine, step or none`);
  }
}
