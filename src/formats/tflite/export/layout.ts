/**
 * Layout bookkeeping for the lowering. Every IR value is placed in TFLite as one or more tensors,
 * each in a layout `perm`: the TFLite tensor is Transpose(value, perm), so its dim i is the ONNX
 * dim perm[i]. Images are NHWC = Transpose(NCHW, [0,2,3,1]); everything else starts out in ONNX
 * order (the identity perm). Ops that do not care about axis order (elementwise, concat with a
 * remapped axis, reductions over remapped axes, squeeze, transpose itself) pass a layout on, so
 * a conv net stays NHWC from its first Conv to its last without a single TRANSPOSE.
 */
import { composePerms, invertPerm, isIdentityPerm, permuteShape, samePerm } from '../../../passes/perm.js';

export const NHWC: readonly number[] = [0, 2, 3, 1];

export function identity(rank: number): number[] {
  return Array.from({ length: rank }, (_, i) => i);
}

export { composePerms, invertPerm, isIdentityPerm, permuteShape, samePerm };

/** The perm that turns a tensor in layout `from` into the same value in layout `to`. */
export function conversionPerm(from: readonly number[], to: readonly number[]): number[] {
  const inv = invertPerm(from);
  return to.map((a) => inv[a]);
}

/**
 * True when the value laid out by `a` and by `b` has its elements in the same memory order:
 * the axes that are not 1 come in the same relative order. Then changing layout is a RESHAPE
 * (free), not a TRANSPOSE — [N,C,1,1] is the same data in NCHW and NHWC.
 */
export function sameDataOrder(shape: readonly number[], a: readonly number[], b: readonly number[]): boolean {
  const big = (p: readonly number[]) => p.filter((axis) => shape[axis] !== 1);
  const x = big(a);
  const y = big(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Where ONNX axis `axis` sits in a tensor laid out by `perm`. */
export function axisIn(perm: readonly number[], axis: number): number {
  return perm.indexOf(axis);
}

/** The layout left after removing ONNX axes `removed` (sorted or not) from a tensor in `perm`. */
export function withoutAxes(perm: readonly number[], removed: readonly number[]): number[] {
  const gone = new Set(removed);
  return perm.filter((a) => !gone.has(a)).map((a) => a - removed.filter((r) => r < a).length);
}

/**
 * The layout after inserting new ONNX axes `inserted` (positions in the output) into a tensor in
 * `perm`: the old axes keep their relative order and each new axis goes to its own position.
 */
export function withAxes(perm: readonly number[], inserted: readonly number[]): number[] {
  const outRank = perm.length + inserted.length;
  const kept = identity(outRank).filter((a) => !inserted.includes(a));
  const out = perm.map((a) => kept[a]);
  for (const a of [...inserted].sort((x, y) => x - y)) out.splice(Math.min(a, out.length), 0, a);
  return out;
}

/**
 * Transpose(data, perm) for float32 data in row-major `dims`: an odometer over the output with
 * the input offset kept incrementally (the generic tensor transpose builds index arrays, which
 * costs more than the rest of a MobileNetV2 export).
 */
export function permuteFloats(data: Float32Array, dims: readonly number[], perm: readonly number[]): Float32Array {
  const rank = dims.length;
  if (perm.every((a, i) => a === i)) return data;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i];
  }
  const outDims = perm.map((a) => dims[a]);
  const step = perm.map((a) => inStrides[a]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  const last = rank - 1;
  let src = 0;
  for (let o = 0; o < out.length; ) {
    // Innermost axis in one run.
    const n = outDims[last];
    const st = step[last];
    for (let i = 0, p = src; i < n; i++, p += st) out[o++] = data[p];
    // Carry into the outer axes.
    let a = last - 1;
    for (; a >= 0; a--) {
      index[a]++;
      src += step[a];
      if (index[a] < outDims[a]) break;
      src -= step[a] * outDims[a];
      index[a] = 0;
    }
    if (a < 0) break;
  }
  return out;
}
