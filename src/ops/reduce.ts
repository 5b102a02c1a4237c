/**
 * Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare and ArgMax/ArgMin.
 * The axes moved from an attribute to an optional input (ReduceSum at opset 13, the others at
 * 18), which also brought `noop_with_empty_axes`. Spec: https://onnx.ai/onnx/operators/
 */
import { dimAdd, dimProduct } from '../ir/dims.js';
import { type DType, valueRange } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import type { Dim } from '../ir/types.js';
import { elementCount, fromOutput0, normAxes, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, fromNumbers, numbers, stridedIndices } from './util.js';

// ---------------------------------------------------------------- which axes

/** The axes to reduce: a list, every axis, none (identity), or not known before running. */
type AxesChoice = number[] | 'all' | 'noop' | 'unknown';

/** An empty or missing axes list means "all axes", unless noop_with_empty_axes asks for identity. */
function emptyAxes(ctx: InferContext | KernelContext): 'all' | 'noop' {
  return ctx.node.int('noop_with_empty_axes', 0) !== 0 ? 'noop' : 'all';
}

function inferAxes(ctx: InferContext, inputSince: number): AxesChoice {
  if (ctx.opset < inputSince) {
    const axes = ctx.node.ints('axes');
    return axes && axes.length > 0 ? axes : 'all';
  }
  if (!ctx.hasInput(1)) return emptyAxes(ctx);
  const s = ctx.symbolic(1);
  if (!s || s.some((d) => typeof d !== 'number')) return 'unknown';
  return s.length > 0 ? (s as number[]) : emptyAxes(ctx);
}

function kernelAxes(ctx: KernelContext, inputSince: number): number[] | 'all' | 'noop' {
  if (ctx.opset < inputSince) {
    const axes = ctx.node.ints('axes');
    return axes && axes.length > 0 ? axes : 'all';
  }
  const t = ctx.optional(1);
  if (!t || t.size === 0) return emptyAxes(ctx);
  return Array.from(numbers(t));
}

/** One flag per axis: true when it is reduced. Repeated axes are allowed and count once. */
function reducedFlags(ctx: InferContext | KernelContext, rank: number, axes: number[] | 'all'): boolean[] {
  if (axes === 'all') return new Array<boolean>(rank).fill(true);
  const flags = new Array<boolean>(rank).fill(false);
  for (const a of axes) flags[axisOf(ctx, a, rank)] = true;
  return flags;
}

function reducedShape<D>(dims: readonly D[], flags: readonly boolean[], keepdims: boolean, one: D): D[] {
  const out: D[] = [];
  dims.forEach((d, i) => {
    if (!flags[i]) out.push(d);
    else if (keepdims) out.push(one);
  });
  return out;
}

/**
 * The input's flat indices grouped by output element, in output order: group j holds every
 * element that reduces into output element j.
 */
function reductionGroups(dims: readonly number[], flags: readonly boolean[]): number[][] {
  const rank = dims.length;
  // Output strides over the kept axes; reduced axes contribute nothing to the output index.
  const outStride = new Array<number>(rank).fill(0);
  let acc = 1;
  for (let d = rank - 1; d >= 0; d--) {
    if (flags[d]) continue;
    outStride[d] = acc;
    acc *= dims[d];
  }
  const groups: number[][] = Array.from({ length: acc }, () => []);
  const slots = stridedIndices(dims, outStride);
  for (let i = 0; i < slots.length; i++) groups[slots[i]].push(i);
  return groups;
}

// ---------------------------------------------------------------- the reductions

type Fold = (xs: readonly number[], dtype: DType) => number;

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** Max or Min that propagates NaN, as numpy's reductions do. */
function extreme(pickLarger: boolean): Fold {
  return (xs, dtype) => {
    if (xs.length === 0) return valueRange(dtype)[pickLarger ? 0 : 1];
    let best = xs[0];
    for (const x of xs) {
      if (Number.isNaN(x)) return x;
      if (pickLarger ? x > best : x < best) best = x;
    }
    return best;
  };
}

/** log(Σ exp(x)), shifted by the maximum so large inputs do not overflow. */
function logSumExp(xs: readonly number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m || Number.isNaN(x)) m = x;
  if (!Number.isFinite(m)) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

// Empty-set results follow from the folds: Sum, L1, L2, SumSquare → 0, Prod → 1,
// LogSum and LogSumExp → -inf, Mean → NaN (0/0), Max/Min → the dtype's lowest/highest.
const FOLDS: ReadonlyArray<[string, Fold]> = [
  ['ReduceSum', sum],
  ['ReduceMean', (xs) => sum(xs) / xs.length],
  ['ReduceMax', extreme(true)],
  ['ReduceMin', extreme(false)],
  ['ReduceProd', (xs) => xs.reduce((a, b) => a * b, 1)],
  ['ReduceL1', (xs) => sum(xs.map(Math.abs))],
  ['ReduceL2', (xs) => Math.sqrt(sum(xs.map((x) => x * x)))],
  ['ReduceLogSum', (xs) => Math.log(sum(xs))],
  ['ReduceLogSumExp', logSumExp],
  ['ReduceSumSquare', (xs) => sum(xs.map((x) => x * x))],
];

/** Shape values (Shape → ReduceProd gives the element count) stay symbolic through Sum and Prod. */
function propagateSymbolic(ctx: InferContext, flags: readonly boolean[]): void {
  const op = ctx.node.opType;
  if ((op !== 'ReduceSum' && op !== 'ReduceProd') || flags.length !== 1 || !flags[0]) return;
  const s = ctx.symbolic(0);
  if (!s) return;
  ctx.outputSymbolic(0, [op === 'ReduceProd' ? dimProduct(s) : s.reduce<Dim>((a, d) => dimAdd(a, d), 0)]);
}

function reduction(op: string, fold: Fold): OpSchema {
  const inputSince = op === 'ReduceSum' ? 13 : 18;
  return {
    op,
    attrs: { axes: 'ints', keepdims: 'int', noop_with_empty_axes: 'int' },
    infer(ctx) {
      const dtype = ctx.dtype(0);
      const shape = ctx.shape(0);
      const keepdims = ctx.node.int('keepdims', 1) !== 0;
      const axes = inferAxes(ctx, inputSince);
      if (!shape) return ctx.output(0, dtype, undefined);
      if (axes === 'noop') {
        ctx.output(0, dtype, shape);
        const s = ctx.symbolic(0);
        if (s) ctx.outputSymbolic(0, s);
        return;
      }
      if (axes === 'unknown') {
        // Which axes go is unknown; with keepdims the rank still is, and so it is when the
        // number of axes is known and they must be distinct.
        if (keepdims)
          return ctx.output(
            0,
            dtype,
            shape.map(() => null),
          );
        const count = ctx.shape(1)?.[0];
        const rank = typeof count === 'number' ? shape.length - count : undefined;
        return ctx.output(0, dtype, rank !== undefined && rank >= 0 ? new Array<Dim>(rank).fill(null) : undefined);
      }
      const flags = reducedFlags(ctx, shape.length, axes);
      ctx.output(0, dtype, reducedShape<Dim>(shape, flags, keepdims, 1));
      propagateSymbolic(ctx, flags);
    },
    kernel(ctx) {
      const x = ctx.input(0);
      const axes = kernelAxes(ctx, inputSince);
      if (axes === 'noop') return [x];
      const keepdims = ctx.node.int('keepdims', 1) !== 0;
      const flags = reducedFlags(ctx, x.rank, axes);
      const values = numbers(x);
      const groups = reductionGroups(x.dims, flags);
      const out = new Float64Array(groups.length);
      groups.forEach((g, j) => {
        out[j] = fold(
          g.map((i) => values[i]),
          x.dtype,
        );
      });
      return [fromNumbers(x.dtype, reducedShape(x.dims, flags, keepdims, 1), out)];
    },
  };
}

// ---------------------------------------------------------------- ArgMax / ArgMin

/** Index of the largest (or smallest) element; a NaN wins at its first occurrence, as in numpy. */
function argExtreme(xs: readonly number[], pickLarger: boolean, lastIndex: boolean): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) {
    const b = xs[best];
    const x = xs[i];
    if (Number.isNaN(b)) break;
    if (Number.isNaN(x)) {
      best = i;
      break;
    }
    const better = pickLarger ? x > b : x < b;
    if (better || (lastIndex && x === b)) best = i;
  }
  return best;
}

function argReduction(op: string, pickLarger: boolean): OpSchema {
  return {
    op,
    attrs: { axis: 'int', keepdims: 'int', select_last_index: 'int' },
    infer(ctx) {
      const shape = ctx.shape(0);
      if (!shape) return ctx.output(0, 'int64', undefined);
      const axis = axisOf(ctx, ctx.node.int('axis', 0), shape.length);
      const flags = shape.map((_, i) => i === axis);
      ctx.output(0, 'int64', reducedShape<Dim>(shape, flags, ctx.node.int('keepdims', 1) !== 0, 1));
    },
    kernel(ctx) {
      const x = ctx.input(0);
      const axis = axisOf(ctx, ctx.node.int('axis', 0), x.rank);
      if (x.dims[axis] === 0) return ctx.fail(`${op} over an empty axis ${axis}`);
      const flags = x.dims.map((_, i) => i === axis);
      const lastIndex = ctx.node.int('select_last_index', 0) !== 0;
      const values = numbers(x);
      const groups = reductionGroups(x.dims, flags);
      const out = groups.map((g) =>
        argExtreme(
          g.map((i) => values[i]),
          pickLarger,
          lastIndex,
        ),
      );
      return [fromNumbers('int64', reducedShape(x.dims, flags, ctx.node.int('keepdims', 1) !== 0, 1), out)];
    },
  };
}

// ---------------------------------------------------------------- gradients

/** The reduced axes of a reduction node, normalized; 'noop' when it is the identity. */
function gradAxes(c: GradContext): number[] | 'noop' {
  const rank = c.shape(c.input(0)).length;
  const all = Array.from({ length: rank }, (_, i) => i);
  const inputSince = c.node.opType === 'ReduceSum' ? 13 : 18;
  let axes: number[] | undefined;
  if (c.opset < inputSince) {
    axes = c.node.ints('axes');
  } else {
    const given = c.optionalInput(1);
    if (given) {
      const t = c.constant(given);
      if (!t) return c.fail('the reduction axes must be constant');
      axes = Array.from(numbers(t));
    }
  }
  // noop_with_empty_axes came with the axes input.
  if (!axes || axes.length === 0) return c.opset >= inputSince && c.node.int('noop_with_empty_axes', 0) !== 0 ? 'noop' : all;
  return normAxes(c, axes, rank);
}

/**
 * A reduction's rule: `local` gets dY and Y shaped to broadcast against X (reduced axes back
 * as size 1, unless they lead), and returns dX.
 */
function reductionRule(local: (c: GradContext, x: Value, dyKept: Value, yKept: () => Value, axes: number[]) => Value): GradRule {
  return fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const axes = gradAxes(c);
    if (axes === 'noop') return c.setGrad(0, dy);
    // Reduced leading axes need not come back: broadcasting aligns from the right.
    const keep = c.node.int('keepdims', 1) !== 0 || axes.every((a, i) => a === i);
    const restore = (v: Value): Value => (keep ? v : c.op('Unsqueeze', [v, c.ints(axes)]));
    let y: Value | undefined;
    c.setGrad(
      0,
      local(
        c,
        c.input(0),
        restore(dy),
        () => {
          y ??= restore(c.output(0));
          return y;
        },
        axes,
      ),
    );
  });
}

const expandTo = (c: GradContext, v: Value, x: Value): Value => c.op('Expand', [v, c.shapeOf(x)]);

const reductionGrads: Record<string, GradRule> = {
  ReduceSum: reductionRule((c, x, dy) => expandTo(c, dy, x)),
  ReduceMean: reductionRule((c, x, dy, _y, axes) => expandTo(c, c.op('Div', [dy, elementCount(c, x, axes)]), x)),
  ReduceSumSquare: reductionRule((c, x, dy) => c.op('Mul', [x, c.op('Mul', [dy, c.scalar(2, c.dtype(x))])])),
  ReduceL1: reductionRule((c, x, dy) => c.op('Mul', [c.op('Sign', [x]), dy])),
  ReduceL2: reductionRule((c, x, dy, y) => c.op('Mul', [x, c.op('Div', [dy, y()])])),
  ReduceLogSum: reductionRule((c, x, dy, y) => expandTo(c, c.op('Div', [dy, c.op('Exp', [y()])]), x)),
  ReduceLogSumExp: reductionRule((c, x, dy, y) => c.op('Mul', [dy, c.op('Exp', [c.op('Sub', [x, y()])])])),
  // Every element equal to the extreme gets dY (all of them on ties).
  ReduceMax: reductionRule((c, x, dy, y) => c.op('Where', [c.op('Equal', [x, y()]), dy, c.scalar(0, c.dtype(x))])),
  ReduceMin: reductionRule((c, x, dy, y) => c.op('Where', [c.op('Equal', [x, y()]), dy, c.scalar(0, c.dtype(x))])),
};

export const REDUCE_OPS: OpSchema[] = withGradients(
  [...FOLDS.map(([op, fold]) => reduction(op, fold)), argReduction('ArgMax', true), argReduction('ArgMin', false)],
  reductionGrads,
);
