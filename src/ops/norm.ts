/**
 * Normalizations: BatchNormalization (inference and training mode, with the running-statistics
 * outputs), InstanceNormalization, LayerNormalization, GroupNormalization, LRN and
 * MeanVarianceNormalization. Statistics are computed in float64 over reduction slots.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { type DType, dtypeFromCode } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { shapeSize } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { channelAxes, elementCount, fromOutput0, perChannel, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, broadcastIndices, fromNumbers, listAttr, numbers, sameAsInput, stridedIndices, strides } from './util.js';

type Ctx = InferContext | KernelContext | GradContext;

// ---------------------------------------------------------------- normalization helpers

/**
 * Groups elements for a reduction: `slots[i]` is the index of element i's group once the `axes`
 * are reduced away (keepdims order), so mean/variance per group is one pass each.
 */
function reductionSlots(dims: readonly number[], axes: readonly number[]): { slots: Int32Array | Float64Array; count: number } {
  const kept = dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const keptStrides = strides(kept).map((s, i) => (axes.includes(i) ? 0 : s));
  return { slots: stridedIndices(dims, keptStrides), count: shapeSize(kept) };
}

/** Mean and population variance of each slot's elements. */
function moments(v: ArrayLike<number>, slots: ArrayLike<number>, count: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(count);
  const variance = new Float64Array(count);
  const size = new Float64Array(count);
  for (let i = 0; i < slots.length; i++) {
    mean[slots[i]] += v[i];
    size[slots[i]]++;
  }
  for (let s = 0; s < count; s++) mean[s] /= size[s];
  for (let i = 0; i < slots.length; i++) variance[slots[i]] += (v[i] - mean[slots[i]]) ** 2;
  for (let s = 0; s < count; s++) variance[s] /= size[s];
  return { mean, variance };
}

/** Axis 1's index of each element of an [N, C, …] tensor. */
function channelOf(dims: readonly number[], i: number): number {
  const inner = shapeSize(dims.slice(2));
  return Math.floor(i / inner) % dims[1];
}

// ---------------------------------------------------------------- BatchNormalization

/** Whether a BatchNormalization node computes batch statistics rather than using the running ones. */
function batchNormTraining(ctx: Ctx): boolean {
  const extraOutputs = ctx.node.outputs.slice(1).some((v) => v);
  if (ctx.opset >= 14) return ctx.node.int('training_mode', 0) === 1;
  // Before 14 the mode is implied by the outputs: the statistics outputs exist only when training.
  if (ctx.opset < 7) return ctx.node.int('is_test', 0) === 0 && extraOutputs;
  return extraOutputs;
}

// Inputs: X, scale, B, input_mean, input_var. Outputs: Y, then running mean/var (and saved mean/var before 14).
const batchNormalization: OpSchema = {
  op: 'BatchNormalization',
  attrs: { epsilon: 'float', momentum: 'float', training_mode: 'int', spatial: 'int', is_test: 'int', consumed_inputs: 'ints' },
  infer(ctx) {
    const x = ctx.shape(0);
    if (x && x.length < 2) ctx.fail(`input has rank ${x.length}; expected [N, C, ...]`);
    ctx.output(0, ctx.dtype(0), x);
    const c = x?.[1] ?? ctx.shape(1)?.[0] ?? null;
    const statsDtype = ctx.opset >= 14 ? (ctx.dtype(3) ?? ctx.dtype(0)) : ctx.dtype(0);
    for (let i = 1; i < ctx.numOutputs; i++) if (ctx.hasOutput(i)) ctx.output(i, statsDtype, ctx.shape(i % 2 === 1 ? 3 : 4) ?? [c]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const [scale, bias, runMean, runVar] = [1, 2, 3, 4].map((i) => numbers(ctx.input(i)));
    const eps = ctx.node.float('epsilon', 1e-5);
    const v = numbers(x);
    const channels = x.dims[1];
    // Opsets 7–8 with spatial=0 give one parameter per activation of a sample, not per channel.
    const perActivation = scale.length !== channels;
    const sample = shapeSize(x.dims.slice(1));
    const param = (i: number): number => (perActivation ? i % sample : channelOf(x.dims, i));
    const training = batchNormTraining(ctx);
    let mean: ArrayLike<number> = runMean;
    let variance: ArrayLike<number> = runVar;
    if (training) {
      const { slots, count } = perActivation
        ? reductionSlots(x.dims, [0])
        : reductionSlots(x.dims, [0, ...x.dims.slice(2).map((_, i) => i + 2)]);
      ({ mean, variance } = moments(v, slots, count));
    }
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const p = param(i);
      y[i] = (scale[p] * (v[i] - mean[p])) / Math.sqrt(variance[p] + eps) + bias[p];
    }
    const outs = [fromNumbers(x.dtype, x.dims, y)];
    if (!training) return outs;
    const momentum = ctx.node.float('momentum', 0.9);
    const statsDtype = ctx.opset >= 14 ? ctx.input(3).dtype : x.dtype;
    const statsDims = ctx.input(3).dims;
    const blend = (run: ArrayLike<number>, cur: ArrayLike<number>) => Array.from(run, (r, i) => r * momentum + cur[i] * (1 - momentum));
    outs.push(fromNumbers(statsDtype, statsDims, blend(runMean, mean)), fromNumbers(statsDtype, statsDims, blend(runVar, variance)));
    if (ctx.opset < 14) outs.push(fromNumbers(statsDtype, statsDims, mean), fromNumbers(statsDtype, statsDims, variance));
    return outs;
  },
};

// ---------------------------------------------------------------- Instance/Layer/Group normalization

const instanceNormalization: OpSchema = {
  op: 'InstanceNormalization',
  attrs: { epsilon: 'float' },
  infer: sameAsInput,
  kernel(ctx) {
    const x = ctx.input(0);
    const scale = numbers(ctx.input(1));
    const bias = numbers(ctx.input(2));
    const eps = ctx.node.float('epsilon', 1e-5);
    const v = numbers(x);
    const { slots, count } = reductionSlots(
      x.dims,
      x.dims.slice(2).map((_, i) => i + 2),
    );
    const { mean, variance } = moments(v, slots, count);
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const c = channelOf(x.dims, i);
      y[i] = (scale[c] * (v[i] - mean[slots[i]])) / Math.sqrt(variance[slots[i]] + eps) + bias[c];
    }
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

/** The dtype LayerNormalization keeps its statistics in (stash_type, float by default). */
function stashType(ctx: Ctx): DType {
  const code = ctx.node.int('stash_type', 1);
  return dtypeFromCode(code) ?? ctx.fail(`unknown stash_type ${code}`);
}

// Inputs: X, Scale, B. Outputs: Y, Mean, InvStdDev (statistics shaped [X dims before axis, 1, …]).
const layerNormalization: OpSchema = {
  op: 'LayerNormalization',
  attrs: { axis: 'int', epsilon: 'float', stash_type: 'int' },
  infer(ctx) {
    const x = ctx.shape(0);
    ctx.output(0, ctx.dtype(0), x);
    if (!ctx.hasOutput(1) && !ctx.hasOutput(2)) return;
    let stats: Shape | undefined;
    if (x) {
      const axis = axisOf(ctx, ctx.node.int('axis', -1), x.length);
      stats = x.map((d, i) => (i < axis ? d : 1));
    }
    const dtype = stashType(ctx);
    ctx.output(1, dtype, stats);
    ctx.output(2, dtype, stats);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axis = axisOf(ctx, ctx.node.int('axis', -1), x.rank);
    const eps = ctx.node.float('epsilon', 1e-5);
    const scaleT = ctx.input(1);
    const biasT = ctx.optional(2);
    const normDims = x.dims.slice(axis);
    const inner = shapeSize(normDims);
    // Scale and bias broadcast (unidirectionally) to the normalized trailing dims.
    const scaleIdx = broadcastIndices(scaleT.dims, normDims);
    const biasIdx = biasT ? broadcastIndices(biasT.dims, normDims) : undefined;
    const scale = numbers(scaleT);
    const bias = biasT ? numbers(biasT) : undefined;
    const v = numbers(x);
    const rows = v.length / Math.max(inner, 1);
    const y = new Float64Array(v.length);
    const mean = new Float64Array(rows);
    const invStd = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < inner; j++) s += v[r * inner + j];
      const m = s / inner;
      let q = 0;
      for (let j = 0; j < inner; j++) q += (v[r * inner + j] - m) ** 2;
      const inv = 1 / Math.sqrt(q / inner + eps);
      mean[r] = m;
      invStd[r] = inv;
      for (let j = 0; j < inner; j++) {
        const b = bias && biasIdx ? bias[biasIdx[j]] : 0;
        y[r * inner + j] = (v[r * inner + j] - m) * inv * scale[scaleIdx[j]] + b;
      }
    }
    const statsDims = x.dims.map((d, i) => (i < axis ? d : 1));
    const dtype = stashType(ctx);
    return [fromNumbers(x.dtype, x.dims, y), fromNumbers(dtype, statsDims, mean), fromNumbers(dtype, statsDims, invStd)];
  },
};

// Inputs: X [N, C, …], scale, bias. Statistics per (sample, group of C/num_groups channels).
const groupNormalization: OpSchema = {
  op: 'GroupNormalization',
  attrs: { epsilon: 'float', num_groups: 'int', stash_type: 'int' },
  infer(ctx) {
    const x = ctx.shape(0);
    const groups = ctx.node.int('num_groups') ?? ctx.fail('num_groups is required');
    if (groups < 1) ctx.fail(`num_groups ${groups} must be positive`);
    if (x && x.length < 2) ctx.fail(`input has rank ${x.length}; expected [N, C, ...]`);
    if (x && typeof x[1] === 'number' && x[1] % groups !== 0) ctx.fail(`${x[1]} channels do not split into ${groups} groups`);
    sameAsInput(ctx);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const groups = ctx.node.int('num_groups', 1);
    const eps = ctx.node.float('epsilon', 1e-5);
    const [batch, channels] = x.dims;
    if (channels % groups !== 0) ctx.fail(`${channels} channels do not split into ${groups} groups`);
    const scale = numbers(ctx.input(1));
    const bias = numbers(ctx.input(2));
    // Opset 18 gives scale/bias per group, 21 per channel; the length tells them apart (equal when groups = channels).
    const perChannel = scale.length === channels;
    const perGroup = channels / groups;
    const inner = shapeSize(x.dims.slice(2));
    const groupSize = perGroup * inner;
    const v = numbers(x);
    const y = new Float64Array(v.length);
    for (let g = 0; g < batch * groups; g++) {
      const from = g * groupSize;
      let s = 0;
      for (let i = from; i < from + groupSize; i++) s += v[i];
      const m = s / groupSize;
      let q = 0;
      for (let i = from; i < from + groupSize; i++) q += (v[i] - m) ** 2;
      const inv = 1 / Math.sqrt(q / groupSize + eps);
      for (let i = from; i < from + groupSize; i++) {
        const c = Math.floor(i / inner) % channels;
        const p = perChannel ? c : Math.floor(c / perGroup);
        y[i] = (v[i] - m) * inv * scale[p] + bias[p];
      }
    }
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

// ---------------------------------------------------------------- LRN, MeanVarianceNormalization

const lrn: OpSchema = {
  op: 'LRN',
  attrs: { alpha: 'float', beta: 'float', bias: 'float', size: 'int' },
  infer: sameAsInput,
  kernel(ctx) {
    const x = ctx.input(0);
    const size = ctx.node.int('size') ?? ctx.fail('LRN size is required');
    const alpha = ctx.node.float('alpha', 1e-4);
    const beta = ctx.node.float('beta', 0.75);
    const bias = ctx.node.float('bias', 1);
    const channels = x.dims[1];
    const inner = shapeSize(x.dims.slice(2));
    // The window over channels runs from c − ⌊(size−1)/2⌋ to c + ⌈(size−1)/2⌉.
    const before = Math.floor((size - 1) / 2);
    const after = Math.ceil((size - 1) / 2);
    const v = numbers(x);
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const c = Math.floor(i / inner) % channels;
      let sq = 0;
      for (let cc = Math.max(0, c - before); cc <= Math.min(channels - 1, c + after); cc++) sq += v[i + (cc - c) * inner] ** 2;
      y[i] = v[i] / (bias + (alpha / size) * sq) ** beta;
    }
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

const meanVarianceNormalization: OpSchema = {
  op: 'MeanVarianceNormalization',
  attrs: { axes: 'ints' },
  infer: sameAsInput,
  kernel(ctx) {
    const x = ctx.input(0);
    const axes = listAttr(ctx, 'axes', [0, 2, 3]).map((a) => axisOf(ctx, a, x.rank));
    const v = numbers(x);
    const { slots, count } = reductionSlots(x.dims, axes);
    const { mean, variance } = moments(v, slots, count);
    // The function body divides by sqrt(E[x²] − E[x]²) + 1e-9.
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) y[i] = (v[i] - mean[slots[i]]) / (Math.sqrt(variance[slots[i]]) + 1e-9);
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

// ---------------------------------------------------------------- gradients

/** μ, x − μ and 1/√(σ² + ε) over `axes` (kept), recomputed in the gradient graph. */
function statistics(c: GradContext, x: Value, axes: number[], eps: number): { xc: Value; inv: Value } {
  const mean = c.reduce('ReduceMean', x, axes, true);
  const xc = c.op('Sub', [x, mean]);
  const variance = c.reduce('ReduceMean', c.op('Mul', [xc, xc]), axes, true);
  const inv = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [variance, c.scalar(eps, c.dtype(x))])])]);
  return { xc, inv };
}

/**
 * dX through x̂ = (x − μ)/σ with μ and σ over `axes`, given h = dL/dx̂:
 *   dX = (h − mean(h) − x̂·mean(h·x̂)) / σ.
 */
function normalizedGrad(c: GradContext, h: Value, xhat: Value, inv: Value, axes: number[]): Value {
  const mh = c.reduce('ReduceMean', h, axes, true);
  const mhx = c.reduce('ReduceMean', c.op('Mul', [h, xhat]), axes, true);
  return c.op('Mul', [c.op('Sub', [c.op('Sub', [h, mh]), c.op('Mul', [xhat, mhx])]), inv]);
}

/**
 * BatchNormalization. In training mode the batch statistics are recomputed (μ, x − μ, 1/σ per
 * channel) and, with m elements per channel, dβ = Σ dY, dγ = Σ dY·(x − μ)/σ and
 *   dX = γ/σ·dY − (x − μ)·γ·Σ(dY·(x − μ))/(m·σ³) − γ·dβ/(m·σ),
 * the per-channel factors worked out on [C] vectors so only four full-size passes remain. In
 * inference mode the running statistics are constants: dX = γ/σ·dY.
 */
const batchNormGrad: GradRule = fromOutput0((c, dy) => {
  const x = c.input(0);
  const scale = c.input(1);
  const rank = c.shape(x).length;
  const axes = channelAxes(rank);
  const t = c.dtype(x);
  const eps = c.node.float('epsilon', 1e-5);
  const ch = (v: Value): Value => perChannel(c, v, rank);
  const flat = (v: Value): Value => c.op('Reshape', [v, c.ints([-1])]);
  const training = c.opset >= 14 ? c.node.int('training_mode', 0) === 1 : c.node.outputs.slice(1).some((o) => o);
  const dBeta = c.needs(2) || (training && c.needs(0)) ? c.reduce('ReduceSum', dy, axes, false) : undefined;
  if (c.needs(2) && dBeta) c.setGrad(2, dBeta);
  if (training) {
    if (!c.needs(0) && !c.needs(1)) return;
    const { xc, inv } = statistics(c, x, axes, eps);
    const invC = flat(inv);
    const s = c.reduce('ReduceSum', c.op('Mul', [dy, xc]), axes, false);
    if (c.needs(1)) c.setGrad(1, c.op('Mul', [s, invC]));
    if (c.needs(0) && dBeta) {
      const a = c.op('Mul', [scale, invC]);
      const k = c.op('Div', [a, elementCount(c, x, axes)]);
      const b = c.op('Mul', [c.op('Mul', [k, c.op('Mul', [invC, invC])]), s]);
      const shift = c.op('Mul', [k, dBeta]);
      c.setGrad(0, c.op('Sub', [c.op('Mul', [dy, ch(a)]), c.op('Add', [c.op('Mul', [xc, ch(b)]), ch(shift)])]));
    }
    return;
  }
  if (c.needs(3) || c.needs(4)) c.fail('gradients with respect to the running statistics are not supported');
  const inv = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [c.input(4), c.scalar(eps, t)])])]);
  if (c.needs(0)) c.setGrad(0, c.op('Mul', [dy, ch(c.op('Mul', [scale, inv]))]));
  if (c.needs(1)) {
    const xhat = c.op('Mul', [c.op('Sub', [x, ch(c.input(3))]), ch(inv)]);
    c.setGrad(1, c.reduce('ReduceSum', c.op('Mul', [dy, xhat]), axes, false));
  }
});

/** InstanceNormalization: statistics per sample and channel over the spatial axes, recomputed. */
const instanceNormGrad: GradRule = fromOutput0((c, dy) => {
  const x = c.input(0);
  const rank = c.shape(x).length;
  const spatial = channelAxes(rank).slice(1);
  if (c.needs(2)) c.setGrad(2, c.reduce('ReduceSum', dy, channelAxes(rank), false));
  if (!c.needs(0) && !c.needs(1)) return;
  const { xc, inv } = statistics(c, x, spatial, c.node.float('epsilon', 1e-5));
  const xhat = c.op('Mul', [xc, inv]);
  if (c.needs(1)) c.setGrad(1, c.reduce('ReduceSum', c.op('Mul', [dy, xhat]), channelAxes(rank), false));
  if (c.needs(0)) c.setGrad(0, normalizedGrad(c, c.op('Mul', [dy, perChannel(c, c.input(1), rank)]), xhat, inv, spatial));
});

/**
 * LayerNormalization: the node's own Mean and InvStdDev outputs (added when missing) give x̂;
 * when they are kept in another precision than X (stash_type), the statistics are recomputed.
 */
const layerNormGrad: GradRule = fromOutput0((c, dy) => {
  const x = c.input(0);
  const shape = c.shape(x);
  const axis = axisOf(c, c.node.int('axis', -1), shape.length);
  const axes = Array.from({ length: shape.length - axis }, (_, i) => axis + i);
  const yShape = c.shape(c.output(0));
  if (c.needs(2)) c.setGrad(2, c.sumTo(dy, yShape, c.input(2)));
  if (!c.needs(0) && !c.needs(1)) return;
  let xhat: Value;
  let inv: Value;
  if (stashType(c) === c.dtype(x)) {
    const statsType = { kind: 'tensor' as const, dtype: stashType(c), shape: shape.map((d, i) => (i < axis ? d : 1)) };
    inv = c.forwardOutput(2, statsType);
    xhat = c.op('Mul', [c.op('Sub', [x, c.forwardOutput(1, statsType)]), inv]);
  } else {
    const stats = statistics(c, x, axes, c.node.float('epsilon', 1e-5));
    inv = stats.inv;
    xhat = c.op('Mul', [stats.xc, inv]);
  }
  if (c.needs(1)) c.setGrad(1, c.sumTo(c.op('Mul', [dy, xhat]), yShape, c.input(1)));
  if (c.needs(0)) c.setGrad(0, normalizedGrad(c, c.op('Mul', [dy, c.input(1)]), xhat, inv, axes));
});

export const NORM_OPS: OpSchema[] = withGradients(
  [batchNormalization, instanceNormalization, layerNormalization, groupNormalization, lrn, meanVarianceNormalization],
  { BatchNormalization: batchNormGrad, InstanceNormalization: instanceNormGrad, LayerNormalization: layerNormGrad },
);
