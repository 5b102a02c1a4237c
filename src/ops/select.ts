/**
 * Operators that pick, mask or run along elements by value or position: OneHot, NonZero,
 * Compress, Trilu, EyeLike, Unique, TopK, ReverseSequence and CumSum. Picks copy through
 * `takeElements`, so they work for every dtype; only arithmetic (CumSum, TopK's and Unique's
 * ordering) goes through numbers, with NaN sorted last as numpy does.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { dimProduct } from '../ir/dims.js';
import { type DType, dtypeFromCode } from '../ir/dtype.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, checkSameShape, fromNumbers, indexMap, nullDims, numbers, offsetWith, strides, takeElements, withFill } from './util.js';

type Ctx = InferContext | KernelContext;

// ---------------------------------------------------------------- helpers

/** Orders numbers ascending with NaN last (as numpy sorts), NaNs equal to each other. */
function compareNumbers(a: number, b: number): number {
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Comparison of two elements of `t` by flat index: numeric order, or byte order for strings. */
function elementOrder(t: Tensor): (i: number, j: number) => number {
  if (t.dtype === 'string') {
    const s = t.stringBytes;
    return (i, j) => compareBytes(s[i], s[j]);
  }
  const v = numbers(t);
  return (i, j) => compareNumbers(v[i], v[j]);
}

/** Flags of the non-zero elements (non-empty strings). */
function nonZeroFlags(t: Tensor): Uint8Array {
  if (t.dtype === 'string') return Uint8Array.from(t.stringBytes, (s) => (s.length > 0 ? 1 : 0));
  const v = numbers(t);
  return Uint8Array.from({ length: v.length }, (_, i) => (v[i] !== 0 ? 1 : 0));
}

/** Outer / axis / inner extents of a shape around one axis, for loops along that axis. */
function aroundAxis(dims: readonly number[], axis: number): [number, number, number] {
  return [shapeSize(dims.slice(0, axis)), dims[axis], shapeSize(dims.slice(axis + 1))];
}

// ---------------------------------------------------------------- OneHot

/** OneHot's depth when known: an integer shape value, or a constant of any numeric type. */
function depthDim(ctx: InferContext): Dim {
  const s = ctx.symbolic(1);
  if (s?.length === 1) return s[0];
  const c = ctx.constant(1);
  return c?.size === 1 ? Math.trunc(c.scalarValue()) : null;
}

const oneHot: OpSchema = {
  op: 'OneHot',
  attrs: { axis: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(2);
    const indices = ctx.shape(0);
    const values = ctx.shape(2);
    if (values?.every((d) => typeof d === 'number') && dimProduct(values) !== 2) ctx.fail('values must hold [off, on]');
    const depth = depthDim(ctx);
    if (typeof depth === 'number' && depth < 0) ctx.fail(`depth ${depth} is negative`);
    if (!indices) return ctx.output(0, dtype, undefined);
    const axis = axisOf(ctx, ctx.node.int('axis', -1), indices.length + 1);
    ctx.output(0, dtype, [...indices.slice(0, axis), depth, ...indices.slice(axis)]);
  },
  kernel(ctx) {
    const ind = ctx.input(0);
    const depth = Math.trunc(numbers(ctx.input(1))[0]);
    const values = ctx.input(2);
    if (values.size !== 2) return ctx.fail('values must hold [off, on]');
    if (!(depth >= 0)) return ctx.fail(`depth ${depth} is not a non-negative integer`);
    const axis = axisOf(ctx, ctx.node.int('axis', -1), ind.rank + 1);
    const dims = [...ind.dims.slice(0, axis), depth, ...ind.dims.slice(axis)];
    const iv = numbers(ind);
    const ist = strides(ind.dims);
    // Negative indices count from the end since opset 11; before, like any index outside
    // [0, depth), they give a row of off values.
    const wrap = ctx.opset >= 11;
    const src = indexMap(dims, (c) => {
      let off = 0;
      for (let d = 0, k = 0; d < c.length; d++) if (d !== axis) off += c[d] * ist[k++];
      let v = Math.trunc(iv[off]);
      if (v < 0 && wrap) v += depth;
      return v === c[axis] ? 1 : 0;
    });
    return [takeElements(values.reshape([2]), dims, src)];
  },
};

// ---------------------------------------------------------------- NonZero, Compress

function nonZeroCoords(x: Tensor): { count: number; coords: number[] } {
  const flags = nonZeroFlags(x);
  const st = strides(x.dims);
  const positions: number[] = [];
  flags.forEach((f, i) => {
    if (f) positions.push(i);
  });
  // Output is [rank, count]: row d holds the d-th coordinate of every non-zero, in row-major order.
  const coords: number[] = [];
  for (let d = 0; d < x.rank; d++) for (const p of positions) coords.push(Math.floor(p / st[d]) % x.dims[d]);
  return { count: positions.length, coords };
}

const nonZero: OpSchema = {
  op: 'NonZero',
  attrs: {},
  infer(ctx) {
    const c = ctx.constant(0);
    const count = c ? nonZeroCoords(c).count : ctx.freshDim('nonzero');
    ctx.output(0, 'int64', [ctx.rank(0) ?? null, count]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const { count, coords } = nonZeroCoords(x);
    return [fromNumbers('int64', [x.rank, count], coords)];
  },
};

/** Positions picked by a Compress condition along a dim of `limit` entries (a shorter condition drops the rest). */
function compressed(condition: Tensor, limit: number): number[] {
  const flags = nonZeroFlags(condition);
  const picked: number[] = [];
  for (let i = 0; i < Math.min(flags.length, limit); i++) if (flags[i]) picked.push(i);
  return picked;
}

const compress: OpSchema = {
  op: 'Compress',
  attrs: { axis: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const condRank = ctx.rank(1);
    if (condRank !== undefined && condRank !== 1) ctx.fail(`condition must be 1-D, got rank ${condRank}`);
    const axisAttr = ctx.node.int('axis');
    const axis = axisAttr !== undefined && shape ? axisOf(ctx, axisAttr, shape.length) : undefined;
    const limit = shape ? (axis === undefined ? dimProduct(shape) : shape[axis]) : null;
    const cond = ctx.constant(1);
    const count = cond ? compressed(cond, typeof limit === 'number' ? limit : Infinity).length : ctx.freshDim('compress');
    // Without an axis the input is flattened first.
    if (axisAttr === undefined) return ctx.output(0, dtype, [count]);
    if (!shape || axis === undefined) return ctx.output(0, dtype, undefined);
    const out = [...shape];
    out[axis] = count;
    ctx.output(0, dtype, out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const cond = ctx.input(1);
    if (cond.rank !== 1) return ctx.fail(`condition must be 1-D, got rank ${cond.rank}`);
    const axisAttr = ctx.node.int('axis');
    if (axisAttr === undefined) {
      const picked = compressed(cond, x.size);
      return [takeElements(x, [picked.length], picked)];
    }
    const axis = axisOf(ctx, axisAttr, x.rank);
    const picked = compressed(cond, x.dims[axis]);
    const dims = [...x.dims];
    dims[axis] = picked.length;
    const st = strides(x.dims);
    return [
      takeElements(
        x,
        dims,
        indexMap(dims, (c) => offsetWith(c, st, axis, picked[c[axis]])),
      ),
    ];
  },
};

// ---------------------------------------------------------------- Trilu, EyeLike

const trilu: OpSchema = {
  op: 'Trilu',
  attrs: { upper: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (shape && shape.length < 2) ctx.fail(`Trilu needs rank ≥ 2, got rank ${shape.length}`);
    ctx.output(0, ctx.dtype(0), shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank < 2) return ctx.fail(`Trilu needs rank ≥ 2, got rank ${x.rank}`);
    const kInput = ctx.optional(1);
    const k = kInput ? numbers(kInput)[0] : 0;
    const upper = ctx.node.int('upper', 1) !== 0;
    const r = x.rank;
    // Upper keeps j − i ≥ k, lower keeps j − i ≤ k, over the last two dims (i, j).
    const src = indexMap(x.dims, (c, flat) => {
      const diag = c[r - 1] - c[r - 2];
      return (upper ? diag >= k : diag <= k) ? flat : x.size;
    });
    return [withFill(ctx, x, Tensor.zeros(x.dtype, [1]), x.dims, src)];
  },
};

function eyeDtype(ctx: Ctx, input: DType | undefined): DType | undefined {
  const code = ctx.node.int('dtype');
  if (code === undefined) return input;
  const d = dtypeFromCode(code);
  if (!d) return ctx.fail(`dtype ${code} is not a tensor element type`);
  return d;
}

const eyeLike: OpSchema = {
  op: 'EyeLike',
  attrs: { dtype: 'int', k: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (shape && shape.length !== 2) ctx.fail(`EyeLike needs a 2-D input, got rank ${shape.length}`);
    ctx.output(0, eyeDtype(ctx, ctx.dtype(0)), shape ?? nullDims(2));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank !== 2) return ctx.fail(`EyeLike needs a 2-D input, got rank ${x.rank}`);
    const dtype = eyeDtype(ctx, x.dtype) ?? x.dtype;
    if (dtype === 'string') return ctx.fail('EyeLike cannot make string tensors');
    const k = ctx.node.int('k', 0);
    const cols = x.dims[1];
    const ones = Uint8Array.from({ length: x.size }, (_, i) => ((i % cols) - Math.floor(i / cols) === k ? 1 : 0));
    return [fromNumbers(dtype, x.dims, ones)];
  },
};

// ---------------------------------------------------------------- Unique

interface UniqueSlices {
  /** First occurrence of each unique slice, in output order. */
  first: number[];
  /** For every input slice, the output position of its value. */
  inverse: number[];
  counts: number[];
}

/**
 * Groups the slices of `x` along `axis` (every element when flattened) into unique values. The
 * sorted order is numpy's: slices compare element by element in row-major order. Unsorted
 * output keeps the order of first occurrence.
 */
function uniqueSlices(x: Tensor, axis: number | undefined, sorted: boolean): UniqueSlices {
  const [outer, count, inner] = axis === undefined ? [1, x.size, 1] : aroundAxis(x.dims, axis);
  const order = elementOrder(x);
  const compare = (a: number, b: number): number => {
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) {
        const c = order((o * count + a) * inner + r, (o * count + b) * inner + r);
        if (c !== 0) return c;
      }
    }
    return 0;
  };
  // Equal slices sort by position, so each group starts at its first occurrence.
  const perm = Array.from({ length: count }, (_, i) => i).sort((a, b) => compare(a, b) || a - b);
  const groupOf = new Array<number>(count);
  const first: number[] = [];
  const counts: number[] = [];
  perm.forEach((s, i) => {
    if (i === 0 || compare(perm[i - 1], s) !== 0) {
      first.push(s);
      counts.push(0);
    }
    groupOf[s] = first.length - 1;
    counts[first.length - 1]++;
  });
  if (sorted) return { first, inverse: groupOf, counts };
  const byFirst = first.map((_, g) => g).sort((a, b) => first[a] - first[b]);
  const position = new Array<number>(byFirst.length);
  byFirst.forEach((g, p) => {
    position[g] = p;
  });
  return {
    first: byFirst.map((g) => first[g]),
    inverse: groupOf.map((g) => position[g]),
    counts: byFirst.map((g) => counts[g]),
  };
}

const unique: OpSchema = {
  op: 'Unique',
  attrs: { axis: 'int', sorted: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const axisAttr = ctx.node.int('axis');
    const axis = axisAttr !== undefined && shape ? axisOf(ctx, axisAttr, shape.length) : undefined;
    const c = ctx.constant(0);
    const count: Dim = c ? uniqueSlices(c, axis, true).first.length : ctx.freshDim('unique');
    let y: Shape | undefined;
    let inverse: Dim;
    if (axisAttr === undefined) {
      y = [count];
      inverse = shape ? dimProduct(shape) : null;
    } else if (shape && axis !== undefined) {
      y = [...shape];
      y[axis] = count;
      inverse = shape[axis];
    } else {
      y = undefined;
      inverse = null;
    }
    ctx.output(0, dtype, y);
    ctx.output(1, 'int64', [count]);
    ctx.output(2, 'int64', [inverse]);
    ctx.output(3, 'int64', [count]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axisAttr = ctx.node.int('axis');
    const axis = axisAttr === undefined ? undefined : axisOf(ctx, axisAttr, x.rank);
    const { first, inverse, counts } = uniqueSlices(x, axis, ctx.node.int('sorted', 1) !== 0);
    let y: Tensor;
    if (axis === undefined) {
      y = takeElements(x, [first.length], first);
    } else {
      const dims = [...x.dims];
      dims[axis] = first.length;
      const st = strides(x.dims);
      y = takeElements(
        x,
        dims,
        indexMap(dims, (c) => offsetWith(c, st, axis, first[c[axis]])),
      );
    }
    return [
      y,
      fromNumbers('int64', [first.length], first),
      fromNumbers('int64', [inverse.length], inverse),
      fromNumbers('int64', [counts.length], counts),
    ];
  },
};

// ---------------------------------------------------------------- TopK

/** K from the attribute (before opset 10) or the one-element input. */
function topKCount(ctx: InferContext): Dim {
  if (ctx.opset < 10) return ctx.node.int('k') ?? ctx.fail('TopK has no k attribute');
  const s = ctx.symbolic(1);
  if (s && s.length !== 1) ctx.fail(`K must hold one element, got ${s.length}`);
  return s ? s[0] : null;
}

const topK: OpSchema = {
  op: 'TopK',
  attrs: { axis: 'int', k: 'int', largest: 'int', sorted: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const k = topKCount(ctx);
    if (typeof k === 'number' && k < 0) ctx.fail(`K is ${k}`);
    if (!shape) {
      ctx.output(0, dtype, undefined);
      ctx.output(1, 'int64', undefined);
      return;
    }
    const axis = axisOf(ctx, ctx.node.int('axis', -1), shape.length);
    const dim = shape[axis];
    if (typeof k === 'number' && typeof dim === 'number' && k > dim) ctx.fail(`K = ${k} exceeds the axis length ${dim}`);
    const out = [...shape];
    out[axis] = k;
    ctx.output(0, dtype, out);
    ctx.output(1, 'int64', out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const k = ctx.opset < 10 ? ctx.node.int('k', 0) : numbers(ctx.input(1))[0];
    const axis = axisOf(ctx, ctx.node.int('axis', -1), x.rank);
    const [outer, len, inner] = aroundAxis(x.dims, axis);
    if (!(k >= 0 && k <= len)) return ctx.fail(`K = ${k} is out of range for an axis of length ${len}`);
    const largest = ctx.node.int('largest', 1) !== 0;
    const v = numbers(x);
    // Equal values keep index order (lower index first) in both directions; NaN counts as the largest.
    const before = (a: number, b: number): number => (largest ? compareNumbers(v[b], v[a]) : compareNumbers(v[a], v[b])) || a - b;
    const dims = [...x.dims];
    dims[axis] = k;
    const src = new Int32Array(shapeSize(dims));
    const picked = new Float64Array(src.length);
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) {
        const line = Array.from({ length: len }, (_, i) => (o * len + i) * inner + r).sort(before);
        for (let j = 0; j < k; j++) {
          const at = (o * k + j) * inner + r;
          src[at] = line[j];
          picked[at] = (line[j] - o * len * inner - r) / inner;
        }
      }
    }
    // With sorted = 0 the order is unspecified; the sorted order is a valid one.
    return [takeElements(x, dims, src), fromNumbers('int64', dims, picked)];
  },
};

// ---------------------------------------------------------------- ReverseSequence

function sequenceAxes(ctx: Ctx, rank: number | undefined): [number, number] {
  const batch = ctx.node.int('batch_axis', 1);
  const time = ctx.node.int('time_axis', 0);
  if (batch !== 0 && batch !== 1) ctx.fail(`batch_axis must be 0 or 1, got ${batch}`);
  if (time !== 0 && time !== 1) ctx.fail(`time_axis must be 0 or 1, got ${time}`);
  if (batch === time) ctx.fail('batch_axis and time_axis are the same axis');
  if (rank !== undefined && rank < 2) ctx.fail(`ReverseSequence needs rank ≥ 2, got rank ${rank}`);
  return [batch, time];
}

const reverseSequence: OpSchema = {
  op: 'ReverseSequence',
  attrs: { batch_axis: 'int', time_axis: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    const [batch] = sequenceAxes(ctx, shape?.length);
    checkSameShape(ctx, 'sequence_lens', ctx.shape(1), shape ? [shape[batch]] : undefined);
    ctx.output(0, ctx.dtype(0), shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const lens = numbers(ctx.input(1));
    const [batch, time] = sequenceAxes(ctx, x.rank);
    if (lens.length !== x.dims[batch]) return ctx.fail(`sequence_lens has ${lens.length} entries for a batch of ${x.dims[batch]}`);
    for (const l of Array.from(lens)) if (l < 0 || l > x.dims[time]) return ctx.fail(`sequence length ${l} is out of range`);
    const st = strides(x.dims);
    // The first len steps of each batch entry are reversed; the rest stay in place.
    const src = indexMap(x.dims, (c) => {
      const len = lens[c[batch]];
      const t = c[time];
      return offsetWith(c, st, time, t < len ? len - 1 - t : t);
    });
    return [takeElements(x, x.dims, src)];
  },
};

// ---------------------------------------------------------------- CumSum

const cumSum: OpSchema = {
  op: 'CumSum',
  attrs: { exclusive: 'int', reverse: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    const axisRank = ctx.rank(1);
    if (axisRank !== undefined && axisRank > 1) ctx.fail(`axis must be a scalar, got rank ${axisRank}`);
    const axis = ctx.constant(1);
    if (shape && axis?.size === 1) axisOf(ctx, axis.scalarValue(), shape.length);
    ctx.output(0, ctx.dtype(0), shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axis = axisOf(ctx, numbers(ctx.input(1))[0], x.rank);
    const exclusive = ctx.node.int('exclusive', 0) !== 0;
    const reverse = ctx.node.int('reverse', 0) !== 0;
    const [outer, len, inner] = aroundAxis(x.dims, axis);
    const v = numbers(x);
    const out = new Float64Array(x.size);
    // float32 sums round after every addition, as a float32 loop would.
    const round = x.dtype === 'float32' ? Math.fround : (s: number) => s;
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) {
        let acc = 0;
        for (let s = 0; s < len; s++) {
          const i = (o * len + (reverse ? len - 1 - s : s)) * inner + r;
          if (exclusive) out[i] = acc;
          acc = round(acc + v[i]);
          if (!exclusive) out[i] = acc;
        }
      }
    }
    return [fromNumbers(x.dtype, x.dims, out)];
  },
};

export const SELECT_OPS: OpSchema[] = [oneHot, nonZero, compress, trilu, eyeLike, unique, topK, reverseSequence, cumSum];
