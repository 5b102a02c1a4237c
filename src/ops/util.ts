/**
 * Helpers shared by the op families: common shape rules, axis and attribute handling, the numeric
 * plumbing of the reference kernels (numbers in, typed storage out, numpy broadcasting), and the
 * index maps the data-movement kernels copy through.
 */

import { broadcastShapes, normAxis } from '../ir/dims.js';
import { arrayType, type DType, is64Bit } from '../ir/dtype.js';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../ir/float16.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { GradContext, InferContext, KernelContext } from './schema.js';

// ---------------------------------------------------------------- shape rules

/** Output 0 has input 0's type (elementwise unary ops). */
export function sameAsInput(ctx: InferContext): void {
  ctx.output(0, ctx.dtype(0), ctx.shape(0));
}

/** Output 0 is the broadcast of all present inputs; dtype from input 0 unless given. */
export function broadcastInfer(ctx: InferContext, dtype?: DType): void {
  const shapes: Shape[] = [];
  for (let i = 0; i < ctx.numInputs; i++) {
    if (!ctx.hasInput(i)) continue;
    const s = ctx.shape(i);
    if (!s) {
      ctx.output(0, dtype ?? ctx.dtype(0), undefined);
      return;
    }
    shapes.push(s);
  }
  const out = broadcastShapes(shapes);
  if (typeof out === 'string') ctx.fail(out);
  ctx.output(0, dtype ?? ctx.dtype(0), out);
}

/** Ranks beyond this are refused: a hostile shape tensor must not make inference allocate. */
export const MAX_RANK = 1024;

/**
 * A shape of `rank` unknown dims, for outputs whose rank comes from a shape tensor's length (a
 * number read from the file) but whose values are not known.
 */
export function unknownDims(ctx: InferContext, rank: number | string | null | undefined): Shape | undefined {
  if (typeof rank !== 'number') return undefined;
  if (!Number.isSafeInteger(rank) || rank < 0 || rank > MAX_RANK) return ctx.fail(`an output of rank ${rank} is not plausible`);
  return new Array<Dim>(rank).fill(null);
}

/** A shape of known rank whose dims are all unknown (a rank the op fixes, not one read from the file: see unknownDims). */
export function nullDims(rank: number): Shape {
  return new Array<Dim>(rank).fill(null);
}

/** Fails when two shapes are known to differ (in rank, or in a dim both know). */
export function checkSameShape(ctx: InferContext, what: string, got: Shape | undefined, want: Shape | undefined): void {
  if (!got || !want) return;
  const differs = got.length !== want.length || got.some((d, i) => typeof d === 'number' && typeof want[i] === 'number' && d !== want[i]);
  if (differs) ctx.fail(`${what} has shape [${got.map((d) => d ?? '?')}], expected [${want.map((d) => d ?? '?')}]`);
}

/** Normalises an axis or fails naming it. */
export function axisOf(ctx: InferContext | KernelContext | GradContext, axis: number, rank: number): number {
  const a = normAxis(axis, rank);
  if (a === undefined) return ctx.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** A list attribute, or `fallback` when it is absent or written as an empty list. */
export function listAttr(ctx: InferContext | KernelContext | GradContext, name: string, fallback: number[]): number[] {
  const v = ctx.node.ints(name);
  return v && v.length > 0 ? v : fallback;
}

/** Integer elements of a constant input (axes, pads, shape tensors). */
export function intsOf(t: Tensor): number[] {
  return t.toNumbers();
}

// ---------------------------------------------------------------- kernels: numbers in and out

/** The elements of a tensor as JS numbers (int64 exact up to 2^53; float16/bfloat16 decoded). */
export function numbers(t: Tensor): ArrayLike<number> {
  switch (t.dtype) {
    case 'float32':
    case 'float64':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'bool':
      return t.data as ArrayLike<number>;
    default:
      return t.toNumbers();
  }
}

/** Builds a tensor from numbers, converting to the dtype's storage (rounding, wrapping, encoding). */
export function fromNumbers(dtype: DType, dims: readonly number[], values: ArrayLike<number>): Tensor {
  const n = shapeSize(dims);
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const enc = dtype === 'float16' ? floatToHalf : floatToBfloat16;
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = enc(values[i]);
    return Tensor.from(dtype, dims, out);
  }
  if (dtype === 'bool') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = values[i] ? 1 : 0;
    return Tensor.from(dtype, dims, out);
  }
  if (is64Bit(dtype))
    return Tensor.from(
      dtype,
      dims,
      Array.from({ length: n }, (_, i) => values[i]),
    );
  const Ctor = arrayType(dtype);
  if (!Ctor || Ctor === BigInt64Array || Ctor === BigUint64Array) throw new Error(`cannot make ${dtype} tensors from numbers`);
  const out = new (Ctor as Float32ArrayConstructor)(n);
  for (let i = 0; i < n; i++) out[i] = values[i];
  return Tensor.from(dtype, dims, out);
}

export function decode16(dtype: DType, bits: number): number {
  return dtype === 'bfloat16' ? bfloat16ToFloat(bits) : halfToFloat(bits);
}

/** Row-major strides of a shape. */
export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

/**
 * Walks the elements of a tensor of shape `dims` in row-major order and gives, for each, the
 * sum of its coordinates times `steps`. Broadcasting (steps 0 on broadcast dims), transposing
 * (permuted input strides) and reduction grouping (strides of the kept dims) are all this walk.
 */
export function stridedIndices(dims: readonly number[], steps: readonly number[]): Int32Array | Float64Array {
  const n = shapeSize(dims);
  const idx = n < 2 ** 31 ? new Int32Array(n) : new Float64Array(n);
  const rank = dims.length;
  const counter = new Array<number>(rank).fill(0);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = pos;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      pos += steps[d];
      if (counter[d] < dims[d]) break;
      pos -= steps[d] * counter[d];
      counter[d] = 0;
    }
  }
  return idx;
}

/** For each element of `out`, the index of the element of a tensor of shape `dims` broadcast to it. */
export function broadcastIndices(dims: readonly number[], out: readonly number[]): Int32Array | Float64Array {
  const offset = out.length - dims.length;
  const inStrides = strides(dims);
  return stridedIndices(
    out,
    out.map((_, i) => {
      const k = i - offset;
      return k < 0 || dims[k] === 1 ? 0 : inStrides[k];
    }),
  );
}

/** Round half to even, as ONNX Round, the quantizers and numpy's rint do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Static broadcast shape of concrete tensors. */
export function broadcastDims(ctx: KernelContext, ...dims: Array<readonly number[]>): number[] {
  const out = broadcastShapes(dims);
  if (typeof out === 'string') ctx.fail(out);
  return out as number[];
}

/** Elementwise op over broadcast inputs, computed in JS numbers. */
export function mapBroadcast(ctx: KernelContext, inputs: Tensor[], outDtype: DType, fn: (...xs: number[]) => number): Tensor {
  const dims = broadcastDims(ctx, ...inputs.map((t) => t.dims));
  const n = shapeSize(dims);
  const vals = inputs.map((t) => numbers(t));
  const maps = inputs.map((t) => broadcastIndices(t.dims, dims));
  const out = new Float64Array(n);
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) args[k] = vals[k][maps[k][i]];
    out[i] = fn(...args);
  }
  return fromNumbers(outDtype, dims, out);
}

/** Elementwise unary op computed in JS numbers; keeps the dtype unless given. */
export function mapUnary(t: Tensor, fn: (x: number) => number, outDtype: DType = t.dtype): Tensor {
  const v = numbers(t);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = fn(v[i]);
  return fromNumbers(outDtype, t.dims, out);
}

/** Rounds a float32 computation result as float32 would. */
export const f32 = Math.fround;

/**
 * A tensor of shape `dims` whose i-th element is element `src[i]` of `t`. Data movement ops
 * (Transpose, Gather, Slice, Expand, Tile, …) are this one copy with different index maps; it
 * works for every dtype, strings and int64 included, without going through numbers.
 */
export function takeElements(t: Tensor, dims: readonly number[], src: ArrayLike<number>): Tensor {
  const n = shapeSize(dims);
  if (src.length !== n) throw new Error(`index map has ${src.length} entries for ${n} elements`);
  if (t.dtype === 'string') {
    const s = t.stringBytes;
    return Tensor.fromStrings(
      dims,
      Array.from({ length: n }, (_, i) => s[src[i]]),
    );
  }
  if (t.dtype === 'int4' || t.dtype === 'uint4' || t.dtype === 'float4e2m1') {
    const bytes = t.bytes;
    const out = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) {
      const j = src[i];
      const nib = j & 1 ? bytes[j >> 1] >> 4 : bytes[j >> 1] & 0xf;
      out[i >> 1] |= i & 1 ? nib << 4 : nib;
    }
    return Tensor.fromBytes(t.dtype, dims, out);
  }
  const data = t.data;
  const Ctor = data.constructor as new (n: number) => typeof data;
  const out = new Ctor(n);
  for (let i = 0; i < n; i++) out[i] = data[src[i]];
  return Tensor.from(t.dtype, dims, out);
}

/** Identity index map 0..n-1. */
export function iota(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

// ---------------------------------------------------------------- kernels: index maps

/**
 * The source index of every element of a tensor of shape `dims`, computed from its coordinates
 * and flat index in row-major order. `coord` is reused between calls, so `source` must not keep it.
 */
export function indexMap(dims: readonly number[], source: (coord: readonly number[], flat: number) => number): Int32Array {
  const n = shapeSize(dims);
  const src = new Int32Array(n);
  const coord = new Array<number>(dims.length).fill(0);
  for (let i = 0; i < n; i++) {
    src[i] = source(coord, i);
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++coord[d] < dims[d]) break;
      coord[d] = 0;
    }
  }
  return src;
}

/** Flat offset of `coord` under strides `st`, with the coordinate on `axis` replaced by `at`. */
export function offsetWith(coord: readonly number[], st: readonly number[], axis: number, at: number): number {
  let o = 0;
  for (let d = 0; d < coord.length; d++) o += (d === axis ? at : coord[d]) * st[d];
  return o;
}

/**
 * One flat tensor holding a's elements followed by b's. Kernels that mix elements of two tensors
 * (data and updates, data and a pad value) stay a single `takeElements` copy: an index ≥ a.size
 * picks from b.
 */
export function appendElements(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`cannot mix ${a.dtype} and ${b.dtype} elements`);
  const n = a.size + b.size;
  if (a.dtype === 'string') return Tensor.fromStrings([n], [...a.stringBytes, ...b.stringBytes]);
  if (a.dtype === 'int4' || a.dtype === 'uint4' || a.dtype === 'float4e2m1') {
    // Two elements per byte: unpack and repack nibble by nibble.
    const nibble = (t: Tensor, j: number): number => (j & 1 ? t.bytes[j >> 1] >> 4 : t.bytes[j >> 1] & 0xf);
    const out = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) {
      const v = i < a.size ? nibble(a, i) : nibble(b, i - a.size);
      out[i >> 1] |= i & 1 ? v << 4 : v;
    }
    return Tensor.fromBytes(a.dtype, [n], out);
  }
  const da = a.data;
  const db = b.data as typeof da;
  const Ctor = da.constructor as new (n: number) => typeof da;
  const out = new Ctor(da.length + db.length);
  for (let i = 0; i < da.length; i++) out[i] = da[i];
  for (let i = 0; i < db.length; i++) out[da.length + i] = db[i];
  return Tensor.from(a.dtype, [n], out);
}

/** `x` with the elements whose index map entry is `x.size` replaced by the one element of `fill`. */
export function withFill(ctx: KernelContext, x: Tensor, fill: Tensor, dims: readonly number[], src: Int32Array): Tensor {
  if (fill.dtype !== x.dtype) return ctx.fail(`fill value is ${fill.dtype} but the data is ${x.dtype}`);
  return takeElements(appendElements(x, fill.reshape([1])), dims, src);
}
