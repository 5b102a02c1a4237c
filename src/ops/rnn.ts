/**
 * Recurrent layers: RNN, GRU, LSTM. One shape rule serves all three (they differ in gate count
 * and in LSTM's extra cell-state output); one time loop serves all three kernels, with a cell
 * function per op. Layouts: 0 is [seq, batch, ...] (all opsets), 1 is [batch, seq, ...] (opset
 * 14+). Spec: https://onnx.ai/onnx/operators/
 */
import { dimDiv } from '../ir/dims.js';
import type { Tensor } from '../ir/tensor.js';
import type { Dim } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { fromNumbers, numbers } from './util.js';

interface Family {
  op: 'RNN' | 'GRU' | 'LSTM';
  /** Gate blocks stacked in W, R and (twice) B. */
  gates: number;
  /** Default activation per direction (f; f, g; f, g, h). */
  activations: string[];
  /** Outputs: Y, Y_h and, for LSTM, Y_c. */
  outputs: number;
}

const RNN: Family = { op: 'RNN', gates: 1, activations: ['Tanh'], outputs: 2 };
const GRU: Family = { op: 'GRU', gates: 3, activations: ['Sigmoid', 'Tanh'], outputs: 2 };
const LSTM: Family = { op: 'LSTM', gates: 4, activations: ['Sigmoid', 'Tanh', 'Tanh'], outputs: 3 };

function directionCount(ctx: InferContext | KernelContext): number {
  const d = ctx.node.str('direction', 'forward');
  if (d === 'forward' || d === 'reverse') return 1;
  if (d === 'bidirectional') return 2;
  return ctx.fail(`unknown direction "${d}"`);
}

/** The layout attribute exists from opset 14; earlier it is always 0. */
function layoutOf(ctx: InferContext | KernelContext): number {
  const layout = ctx.opset >= 14 ? ctx.node.int('layout', 0) : 0;
  if (layout !== 0 && layout !== 1) return ctx.fail(`layout must be 0 or 1, got ${layout}`);
  return layout;
}

// ---------------------------------------------------------------- shape rule

function inferRecurrent(ctx: InferContext, fam: Family): void {
  const dirs = directionCount(ctx);
  const layout = layoutOf(ctx);
  const dtype = ctx.dtype(0);
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const r = ctx.shape(2);
  if (x && x.length !== 3) ctx.fail(`X must have rank 3, got ${x.length}`);
  if (w && w.length !== 3) ctx.fail(`W must have rank 3, got ${w.length}`);
  if (r && r.length !== 3) ctx.fail(`R must have rank 3, got ${r.length}`);
  for (const s of [w, r]) {
    if (s && typeof s[0] === 'number' && s[0] !== dirs) ctx.fail(`weights have ${s[0]} directions, the direction attribute says ${dirs}`);
  }
  // hidden_size may be left out; R's last dim (or W's gate rows) then gives it.
  const hidden: Dim = ctx.node.int('hidden_size') ?? r?.[2] ?? (w ? dimDiv(w[1], fam.gates) : null);
  const seq: Dim = x ? x[layout === 0 ? 0 : 1] : null;
  const batch: Dim = x ? x[layout === 0 ? 1 : 0] : null;
  ctx.output(0, dtype, layout === 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]);
  const state = layout === 0 ? [dirs, batch, hidden] : [batch, dirs, hidden];
  ctx.output(1, dtype, state);
  if (fam.outputs === 3) ctx.output(2, dtype, state);
}

// ---------------------------------------------------------------- activations

type Activation = (x: number) => number;

const sigmoid: Activation = (x) => 1 / (1 + Math.exp(-x));

/** Activation names the spec allows, with how many of alpha and beta each takes and their defaults. */
const ACTIVATIONS: Record<string, { alpha?: number; beta?: number; make: (alpha: number, beta: number) => Activation }> = {
  relu: { make: () => (x) => Math.max(0, x) },
  tanh: { make: () => Math.tanh },
  sigmoid: { make: () => sigmoid },
  affine: { alpha: 1, beta: 0, make: (a, b) => (x) => a * x + b },
  leakyrelu: { alpha: 0.01, make: (a) => (x) => (x >= 0 ? x : a * x) },
  thresholdedrelu: { alpha: 1, make: (a) => (x) => (x > a ? x : 0) },
  scaledtanh: { alpha: 1, beta: 1, make: (a, b) => (x) => a * Math.tanh(b * x) },
  hardsigmoid: { alpha: 0.2, beta: 0.5, make: (a, b) => (x) => Math.max(0, Math.min(1, a * x + b)) },
  elu: { alpha: 1, make: (a) => (x) => (x >= 0 ? x : a * (Math.exp(x) - 1)) },
  softsign: { make: () => (x) => x / (1 + Math.abs(x)) },
  softplus: { make: () => (x) => Math.log1p(Math.exp(x)) },
};

/**
 * The activation functions per direction. activation_alpha and activation_beta are consumed in
 * order by the functions that take them; functions without a given value use their defaults.
 */
function activationsOf(ctx: KernelContext, fam: Family, dirs: number): Activation[][] {
  const attr = ctx.node.attr('activations');
  let names = attr?.type === 'strings' ? attr.value : undefined;
  const per = fam.activations.length;
  if (!names) names = Array.from({ length: dirs }, () => fam.activations).flat();
  else if (names.length === per && dirs === 2) names = [...names, ...names];
  if (names.length !== per * dirs) ctx.fail(`expected ${per * dirs} activations, got ${names.length}`);
  const alphas = ctx.node.floats('activation_alpha') ?? [];
  const betas = ctx.node.floats('activation_beta') ?? [];
  let ai = 0;
  let bi = 0;
  const fns = names.map((name) => {
    const spec = ACTIVATIONS[name.toLowerCase()];
    if (!spec) return ctx.fail(`unknown activation "${name}"`);
    const alpha = spec.alpha === undefined ? 0 : ai < alphas.length ? alphas[ai++] : spec.alpha;
    const beta = spec.beta === undefined ? 0 : bi < betas.length ? betas[bi++] : spec.beta;
    return spec.make(alpha, beta);
  });
  return Array.from({ length: dirs }, (_, d) => fns.slice(d * per, (d + 1) * per));
}

// ---------------------------------------------------------------- kernel

/** One direction's state and gate arithmetic at the current time step, for a cell. */
interface Step {
  /** Hidden state Ht-1, updated in place to Ht. */
  h: Float64Array;
  /** LSTM cell state. */
  c: Float64Array;
  H: number;
  /** Pre-activation of gate block g, unit j: x·Wᵀ + h·Rᵀ + Wb + Rb. */
  gate(g: number, j: number): number;
  /** state·Rᵀ + Rb for gate block g, unit j; the state is Ht-1 unless given (GRU's reset state). */
  recurrent(g: number, j: number, state?: Float64Array): number;
  /** x·W for gate block g, unit j, plus Wb. */
  input(g: number, j: number): number;
  peephole(g: number, j: number): number;
  acts: Activation[];
  clip: (v: number) => number;
}

type Cell = (s: Step, ctx: KernelContext) => void;

/** Ht = f(Xt·Wiᵀ + Ht-1·Riᵀ + Wbi + Rbi) */
const rnnCell: Cell = (s) => {
  const [f] = s.acts;
  const next = new Float64Array(s.H);
  for (let j = 0; j < s.H; j++) next[j] = f(s.clip(s.gate(0, j)));
  s.h.set(next);
};

/** Gates z, r, h; linear_before_reset applies r after multiplying by Rh. */
const gruCell: Cell = (s, ctx) => {
  const [f, g] = s.acts;
  const linearBeforeReset = ctx.node.int('linear_before_reset', 0) !== 0;
  const H = s.H;
  const z = new Float64Array(H);
  const r = new Float64Array(H);
  for (let j = 0; j < H; j++) {
    z[j] = f(s.clip(s.gate(0, j)));
    r[j] = f(s.clip(s.gate(1, j)));
  }
  // (r ⊙ Ht-1)·Rhᵀ needs the whole reset-scaled state before any unit is done.
  const rh = new Float64Array(H);
  for (let j = 0; j < H; j++) rh[j] = r[j] * s.h[j];
  const next = new Float64Array(H);
  for (let j = 0; j < H; j++) {
    const pre = linearBeforeReset ? s.input(2, j) + r[j] * s.recurrent(2, j) : s.input(2, j) + s.recurrent(2, j, rh);
    const ht = g(s.clip(pre));
    next[j] = (1 - z[j]) * ht + z[j] * s.h[j];
  }
  s.h.set(next);
};

/**
 * Gates i, o, f, c; peepholes P in order i, o, f; input_forget couples f to 1 − i. clip bounds
 * the gate pre-activations only; h's argument, the cell state, is not clipped (onnxruntime agrees).
 */
const lstmCell: Cell = (s, ctx) => {
  const [f, g, h] = s.acts;
  const inputForget = ctx.node.int('input_forget', 0) !== 0;
  const H = s.H;
  const nextC = new Float64Array(H);
  const nextH = new Float64Array(H);
  for (let j = 0; j < H; j++) {
    const i = f(s.clip(s.gate(0, j) + s.peephole(0, j) * s.c[j]));
    const ft = inputForget ? 1 - i : f(s.clip(s.gate(2, j) + s.peephole(2, j) * s.c[j]));
    const ct = g(s.clip(s.gate(3, j)));
    nextC[j] = ft * s.c[j] + i * ct;
    const o = f(s.clip(s.gate(1, j) + s.peephole(1, j) * nextC[j]));
    nextH[j] = o * h(nextC[j]);
  }
  s.c.set(nextC);
  s.h.set(nextH);
};

/** Reads element [d, b, j] of a state tensor in the node's layout ([dirs, batch, H] or [batch, dirs, H]). */
function stateIndex(layout: number, dirs: number, batch: number, H: number, d: number, b: number, j: number): number {
  return layout === 0 ? (d * batch + b) * H + j : (b * dirs + d) * H + j;
}

function runRecurrent(ctx: KernelContext, fam: Family, cell: Cell): Tensor[] {
  const dirs = directionCount(ctx);
  const layout = layoutOf(ctx);
  const direction = ctx.node.str('direction', 'forward');
  const X = ctx.input(0);
  const Wt = ctx.input(1);
  const Rt = ctx.input(2);
  const [seq, batch, I] = layout === 0 ? X.dims : [X.dims[1], X.dims[0], X.dims[2]];
  const H = ctx.node.int('hidden_size') ?? Rt.dims[2];
  const G = fam.gates;
  if (Wt.dims.join(',') !== [dirs, G * H, I].join(',')) ctx.fail(`W has shape [${Wt.dims}], expected [${dirs},${G * H},${I}]`);
  if (Rt.dims.join(',') !== [dirs, G * H, H].join(',')) ctx.fail(`R has shape [${Rt.dims}], expected [${dirs},${G * H},${H}]`);
  const x = numbers(X);
  const W = numbers(Wt);
  const R = numbers(Rt);
  const B = ctx.optional(3) ? numbers(ctx.input(3)) : undefined;
  const lens = ctx.optional(4) ? numbers(ctx.input(4)) : undefined;
  const h0 = ctx.optional(5) ? numbers(ctx.input(5)) : undefined;
  const c0 = fam.op === 'LSTM' && ctx.optional(6) ? numbers(ctx.input(6)) : undefined;
  const P = fam.op === 'LSTM' && ctx.optional(7) ? numbers(ctx.input(7)) : undefined;
  const clipAttr = ctx.node.float('clip');
  const clip = clipAttr === undefined ? (v: number) => v : (v: number) => Math.max(-clipAttr, Math.min(clipAttr, v));
  const acts = activationsOf(ctx, fam, dirs);

  const Y = new Float64Array(seq * dirs * batch * H);
  const Yh = new Float64Array(dirs * batch * H);
  const Yc = new Float64Array(dirs * batch * H);
  const yIndex = (t: number, d: number, b: number, j: number): number =>
    layout === 0 ? ((t * dirs + d) * batch + b) * H + j : ((b * seq + t) * dirs + d) * H + j;
  const xAt = (t: number, b: number, k: number): number => x[layout === 0 ? (t * batch + b) * I + k : (b * seq + t) * I + k];

  for (let d = 0; d < dirs; d++) {
    const reverse = direction === 'reverse' || (direction === 'bidirectional' && d === 1);
    const wOff = d * G * H * I;
    const rOff = d * G * H * H;
    const bOff = d * 2 * G * H;
    for (let b = 0; b < batch; b++) {
      const len = lens ? lens[b] : seq;
      if (len < 0 || len > seq) ctx.fail(`sequence_lens entry ${len} is outside [0, ${seq}]`);
      const xt = new Float64Array(I);
      const ht = new Float64Array(H);
      const input = (g: number, j: number): number => {
        let v = B ? B[bOff + g * H + j] : 0;
        const row = wOff + (g * H + j) * I;
        for (let k = 0; k < I; k++) v += xt[k] * W[row + k];
        return v;
      };
      const recurrentOf = (g: number, j: number, state: Float64Array = ht): number => {
        let v = B ? B[bOff + G * H + g * H + j] : 0;
        const row = rOff + (g * H + j) * H;
        for (let k = 0; k < H; k++) v += state[k] * R[row + k];
        return v;
      };
      const s: Step = {
        h: ht,
        c: new Float64Array(H),
        H,
        input,
        recurrent: recurrentOf,
        gate: (g, j) => input(g, j) + recurrentOf(g, j),
        peephole: (g, j) => (P ? P[d * 3 * H + g * H + j] : 0),
        acts: acts[d],
        clip,
      };
      for (let j = 0; j < H; j++) {
        const k = stateIndex(layout, dirs, batch, H, d, b, j);
        if (h0) s.h[j] = h0[k];
        if (c0) s.c[j] = c0[k];
      }
      for (let step = 0; step < len; step++) {
        const t = reverse ? len - 1 - step : step;
        for (let k = 0; k < I; k++) xt[k] = xAt(t, b, k);
        cell(s, ctx);
        for (let j = 0; j < H; j++) Y[yIndex(t, d, b, j)] = s.h[j];
      }
      for (let j = 0; j < H; j++) {
        const k = stateIndex(layout, dirs, batch, H, d, b, j);
        Yh[k] = s.h[j];
        Yc[k] = s.c[j];
      }
    }
  }
  const dtype = X.dtype;
  const stateDims = layout === 0 ? [dirs, batch, H] : [batch, dirs, H];
  const out = [fromNumbers(dtype, layout === 0 ? [seq, dirs, batch, H] : [batch, seq, dirs, H], Y), fromNumbers(dtype, stateDims, Yh)];
  if (fam.outputs === 3) out.push(fromNumbers(dtype, stateDims, Yc));
  return out;
}

const COMMON_ATTRS = {
  activation_alpha: 'floats',
  activation_beta: 'floats',
  activations: 'strings',
  clip: 'float',
  direction: 'string',
  hidden_size: 'int',
  layout: 'int',
} as const;

function recurrent(fam: Family, cell: Cell, attrs: OpSchema['attrs']): OpSchema {
  return {
    op: fam.op,
    attrs: { ...COMMON_ATTRS, ...attrs },
    infer: (ctx) => inferRecurrent(ctx, fam),
    kernel: (ctx) => runRecurrent(ctx, fam, cell),
  };
}

export const RNN_OPS: OpSchema[] = [
  recurrent(RNN, rnnCell, {}),
  recurrent(GRU, gruCell, { linear_before_reset: 'int' }),
  recurrent(LSTM, lstmCell, { input_forget: 'int' }),
];
