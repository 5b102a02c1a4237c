/**
 * Keeping a subset of indices along one axis of a constant tensor: the one tensor operation
 * channel surgery needs. `block` expands each kept index into `block` consecutive positions (a
 * flattened channel of H×W features feeding a Gemm).
 */
import type { TypedArray } from '../ir/dtype.js';
import { shapeSize, Tensor } from '../ir/tensor.js';

/** Kept indices of `keep` (already block-expanded): `[k·block, (k+1)·block)` for each k. */
export function expandBlocks(keep: readonly number[], block: number): number[] {
  if (block === 1) return [...keep];
  const out: number[] = [];
  for (const k of keep) for (let j = 0; j < block; j++) out.push(k * block + j);
  return out;
}

/** A new tensor holding only positions `keep` (ascending) along `axis`. */
export function takeAlong(t: Tensor, axis: number, keep: readonly number[]): Tensor {
  const dims = [...t.dims];
  if (axis < 0 || axis >= dims.length) throw new Error(`axis ${axis} out of range for ${t}`);
  if (dims[axis] === keep.length) return t;
  const src = t.data;
  const outer = shapeSize(dims.slice(0, axis));
  const inner = shapeSize(dims.slice(axis + 1));
  const n = dims[axis];
  const Ctor = src.constructor as { new (length: number): TypedArray };
  const out = new Ctor(outer * keep.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const k of keep) {
      const start = (a * n + k) * inner;
      for (let i = 0; i < inner; i++) out[o++] = src[start + i];
    }
  }
  dims[axis] = keep.length;
  return Tensor.from(t.dtype, dims, out);
}
