/**
 * Helpers shared by the gradient rules. Each family file keeps a table of rules keyed by op type
 * next to its schemas (`withGradients` attaches them); the rules only emit standard ONNX nodes
 * through a GradContext, so they stay browser-safe and know nothing of src/train.
 */
import { normAxis } from '../ir/dims.js';
import { type DType, dtypeCode } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import type { GradContext, GradRule, OpSchema } from './schema.js';

/** Attaches the rules of `table` to the schemas of the same op; a rule for an op not in `schemas` is a programming error. */
export function withGradients(schemas: OpSchema[], table: Readonly<Record<string, GradRule>>): OpSchema[] {
  for (const op of Object.keys(table)) {
    if (!schemas.some((s) => s.op === op)) throw new Error(`gradient rule for ${op}, which this family does not define`);
  }
  return schemas.map((s) => (table[s.op] ? { ...s, grad: table[s.op] } : s));
}

/** Normalized, sorted, distinct axes; fails naming the node when one is out of range. */
export function normAxes(ctx: GradContext, axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normAxis(a, rank) ?? ctx.fail(`axis ${a} is out of range for rank ${rank}`));
  return [...new Set(out)].sort((a, b) => a - b);
}

/** The number of elements of `x` along `axes`, as a scalar of `dtype` (default x's; a constant when those dims are known). */
export function elementCount(ctx: GradContext, x: Value, axes: readonly number[], dtype: DType = ctx.dtype(x)): Value {
  const shape = ctx.shape(x);
  const dims = axes.map((a) => shape[a]);
  if (dims.every((d) => typeof d === 'number'))
    return ctx.scalar(
      (dims as number[]).reduce((p, d) => p * d, 1),
      dtype,
    );
  const picked = ctx.op('Gather', [ctx.op('Shape', [x]), ctx.ints(axes)]);
  return ctx.op('Cast', [ctx.op('ReduceProd', [picked], { keepdims: 0 })], { to: dtypeCode(dtype) });
}

/** A per-channel vector [C] shaped [C, 1, …] to broadcast over [N, C, spatial…] of rank `rank`. */
export function perChannel(ctx: GradContext, v: Value, rank: number): Value {
  if (rank <= 2) return v;
  return ctx.op('Unsqueeze', [v, ctx.ints(Array.from({ length: rank - 2 }, (_, i) => i + 1))]);
}

/** The reduction axes of a per-channel statistic of [N, C, spatial…]: all but axis 1. */
export function channelAxes(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}

/** Runs `rule` only when output 0 has a gradient; the common shape of single-output rules. */
export function fromOutput0(rule: (ctx: GradContext, dy: Value) => void): GradRule {
  return (ctx) => {
    const dy = ctx.grad(0);
    if (dy) rule(ctx, dy);
  };
}

/** A rule for a unary op: dX = local(ctx, x, y, dY). */
export function unaryRule(local: (ctx: GradContext, x: Value, y: Value, dy: Value) => Value): GradRule {
  return fromOutput0((ctx, dy) => {
    if (ctx.needs(0)) ctx.setGrad(0, local(ctx, ctx.input(0), ctx.output(0), dy));
  });
}

/** The static spatial dims of [N, C, spatial…] value `v`; fails naming `why` otherwise. */
export function spatialDims(c: GradContext, v: Value, why: string): number[] {
  const s = c.shape(v).slice(2);
  if (!s.every((d) => typeof d === 'number')) c.fail(`${why} needs the spatial dims of ${v.name} known, but they are [${s}]`);
  return s as number[];
}
