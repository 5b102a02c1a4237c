/**
 * Reductions and normalisations, on whatever layout the input has (axes renumbered):
 * ReduceMean/Max/Min/Sum/Prod → MEAN/REDUCE_MAX/REDUCE_MIN/SUM/REDUCE_PROD; Softmax/LogSoftmax →
 * SOFTMAX/LOG_SOFTMAX, which work on the last axis, so the input is taken in a layout that ends
 * with the softmax axis (its own when it already does); LayerNormalization → MEAN, SUB,
 * MUL, MEAN, ADD ε, RSQRT, MUL, then the scale (MUL) and bias (ADD).
 */
import type { Node, Value } from '../../../../ir/graph.js';
import { Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { axisIn, identity, permuteShape, withoutAxes } from '../layout.js';
import { FIXED_OUTPUT } from '../quant.js';
import { input, type Lowering, refuse } from './common.js';

const REDUCE: Record<string, { code: number; int8: 'own' | 'input' | false }> = {
  ReduceMean: { code: Builtin.MEAN, int8: 'own' },
  ReduceMax: { code: Builtin.REDUCE_MAX, int8: 'input' },
  ReduceMin: { code: Builtin.REDUCE_MIN, int8: 'input' },
  ReduceSum: { code: Builtin.SUM, int8: false },
  ReduceProd: { code: Builtin.REDUCE_PROD, int8: false },
};

function reduceAxes(ctx: LowerContext, node: Node, rank: number): number[] {
  const attr = node.ints('axes');
  const v = node.input(1);
  const axes = attr ?? (v ? ctx.constant(v, 'axes', node).toNumbers() : []);
  if (axes.length === 0) {
    if (node.int('noop_with_empty_axes', 0) === 1) refuse(node, 'noop_with_empty_axes is not exported');
    return identity(rank);
  }
  return axes.map((a) => (a < 0 ? a + rank : a));
}

function lowerReduce(ctx: LowerContext, node: Node): void {
  const spec = REDUCE[node.opType];
  const x = input(node, 0);
  const out = node.output(0);
  const rank = ctx.rank(x);
  const axes = reduceAxes(ctx, node, rank);
  const keep = node.int('keepdims', 1) === 1;
  const perm = ctx.layout(x);
  const kind: Kind =
    spec.int8 === 'own' ? (ctx.canInt8(x, out) ? 'int8' : 'float') : spec.int8 === 'input' && ctx.canInt8(x) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t = ctx.read(x, perm, kind);
  const outPerm = keep ? perm : withoutAxes(perm, axes);
  const y = ctx.produce(out, outPerm, kind, kind === 'int8' && spec.int8 === 'input' ? ctx.paramsOf(x) : undefined);
  const axesTensor = ctx.int32Const(
    `${node.name || out.name}/axes`,
    axes.map((a) => axisIn(perm, a)),
  );
  ctx.op(spec.code, [t, axesTensor], [y], { type: 'ReducerOptions', fields: { keep_dims: keep } });
}

/** A layout of `x` whose last axis is `axis`: x's own when it is, else ONNX order or that axis moved last. */
function lastAxisLayout(ctx: LowerContext, x: Value, axis: number): readonly number[] {
  const rank = ctx.rank(x);
  const own = ctx.layout(x);
  if (own[rank - 1] === axis) return own;
  if (axis === rank - 1) return identity(rank);
  return [...own.filter((a) => a !== axis), axis];
}

function lowerSoftmax(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const rank = ctx.rank(x);
  let axis = node.int('axis', ctx.legacySoftmax ? 1 : -1);
  if (axis < 0) axis += rank;
  if (axis !== rank - 1 && ctx.legacySoftmax)
    refuse(node, 'opset < 13 Softmax over several axes: upgrade the model with mobilize optimize --opset 13');
  const perm = lastAxisLayout(ctx, x, axis);
  const log = node.opType === 'LogSoftmax';
  // int8 only where the model has the output quantized too (a QDQ model may keep probabilities float).
  const kind: Kind = !log && ctx.canInt8(x, out) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t = ctx.read(x, perm, kind);
  const y = ctx.produce(out, perm, kind, kind === 'int8' ? FIXED_OUTPUT.SOFTMAX : undefined);
  if (log) ctx.op(Builtin.LOG_SOFTMAX, [t], [y], { type: 'LogSoftmaxOptions', fields: {} });
  else ctx.op(Builtin.SOFTMAX, [t], [y], { type: 'SoftmaxOptions', fields: { beta: 1 } });
}

function lowerLayerNorm(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const scale = input(node, 1, 'scale');
  const bias = node.input(2);
  const out = node.output(0);
  if (node.outputs.length > 1 && node.outputs.slice(1).some((o) => o && o.uses.length > 0))
    refuse(node, 'its mean and inverse-deviation outputs are not exported');
  const rank = ctx.rank(x);
  let axis = node.int('axis', -1);
  if (axis < 0) axis += rank;
  const eps = node.float('epsilon', 1e-5);
  const perm = ctx.layout(x);
  ctx.floatOp(node);
  const t = ctx.read(x, perm);
  const shape = permuteShape(ctx.shape(x), perm);
  const reduced = shape.map((d, i) => (perm[i] >= axis ? 1 : d));
  const base = node.name || out.name;
  const axes = ctx.int32Const(
    `${base}/axes`,
    identity(rank - axis).map((i) => axisIn(perm, axis + i)),
  );
  const mean = ctx.temp(`${base}/mean`, reduced, 'float');
  ctx.op(Builtin.MEAN, [t, axes], [mean], { type: 'ReducerOptions', fields: { keep_dims: true } });
  const centred = ctx.temp(`${base}/centred`, shape, 'float');
  ctx.op(Builtin.SUB, [t, mean], [centred], { type: 'SubOptions', fields: { fused_activation_function: 0 } });
  const squared = ctx.temp(`${base}/squared`, shape, 'float');
  ctx.op(Builtin.MUL, [centred, centred], [squared], { type: 'MulOptions', fields: { fused_activation_function: 0 } });
  const variance = ctx.temp(`${base}/variance`, reduced, 'float');
  ctx.op(Builtin.MEAN, [squared, axes], [variance], { type: 'ReducerOptions', fields: { keep_dims: true } });
  const shifted = ctx.temp(`${base}/variance_eps`, reduced, 'float');
  ctx.op(Builtin.ADD, [variance, ctx.scalar(`${base}/epsilon`, eps, 'float')], [shifted], {
    type: 'AddOptions',
    fields: { fused_activation_function: 0 },
  });
  const inv = ctx.temp(`${base}/rsqrt`, reduced, 'float');
  ctx.op(Builtin.RSQRT, [shifted], [inv]);
  const normed = ctx.temp(`${base}/normalized`, shape, 'float');
  ctx.op(Builtin.MUL, [centred, inv], [normed], { type: 'MulOptions', fields: { fused_activation_function: 0 } });
  const scaledOut = bias ? ctx.temp(`${base}/scaled`, shape, 'float') : ctx.produce(out, perm, 'float');
  ctx.op(Builtin.MUL, [normed, ctx.operand(scale, rank, perm)], [scaledOut], {
    type: 'MulOptions',
    fields: { fused_activation_function: 0 },
  });
  if (bias) {
    const y = ctx.produce(out, perm, 'float');
    ctx.op(Builtin.ADD, [scaledOut, ctx.operand(bias, rank, perm)], [y], { type: 'AddOptions', fields: { fused_activation_function: 0 } });
  }
}

export const REDUCE_LOWERINGS: Record<string, Lowering> = {
  ReduceMean: lowerReduce,
  ReduceMax: lowerReduce,
  ReduceMin: lowerReduce,
  ReduceSum: lowerReduce,
  ReduceProd: lowerReduce,
  Softmax: lowerSoftmax,
  LogSoftmax: lowerSoftmax,
  LayerNormalization: lowerLayerNorm,
};
