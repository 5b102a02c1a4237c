/** Summary statistics of a tensor's values, for printing model outputs. */
import { isFloat } from '../ir/dtype.js';
import type { Tensor } from '../ir/tensor.js';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  /** NaN and infinite elements (floats only). */
  nonFinite?: number;
  /** Top-5 indices along the last axis of the first row, for classifier-like outputs. */
  top5?: number[];
}

export function summarize(name: string, t: Tensor): TensorSummary {
  const out: TensorSummary = { name, dtype: t.dtype, shape: [...t.dims] };
  if (t.dtype === 'string' || t.size === 0) return out;
  const v = t.toNumbers();
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sq = 0;
  let finite = 0;
  for (const x of v) {
    if (!Number.isFinite(x)) continue;
    finite++;
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
    sq += x * x;
  }
  if (finite > 0) {
    const mean = sum / finite;
    Object.assign(out, { min, max, mean, std: Math.sqrt(Math.max(0, sq / finite - mean * mean)) });
  }
  if (isFloat(t.dtype)) out.nonFinite = v.length - finite;
  const last = t.dims[t.dims.length - 1] ?? 0;
  if (isFloat(t.dtype) && t.rank >= 1 && last > 1 && t.size / last <= 64) {
    const row = v.slice(0, last);
    out.top5 = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, 5);
  }
  return out;
}
