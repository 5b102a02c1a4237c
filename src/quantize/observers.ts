/**
 * Observers: each watches one activation tensor over the calibration batches and picks the float
 * range that tensor's 8-bit grid will cover. They stream: min-max keeps two numbers, the others a
 * fixed-size histogram that re-bins (by merging neighbouring bins) when a batch falls outside the
 * range seen so far. No observer keeps activations.
 *
 * - minmax: the extremes seen. Nothing clipped; one outlier stretches the grid.
 * - percentile: the p-th percentile at each end (99.99 by default) — outliers beyond it saturate.
 * - entropy: TensorRT's calibration. A histogram of |x| (2048 bins); for each candidate threshold
 *   T, P is the histogram up to T with the outliers piled into its last bin and Q the same bins
 *   merged into the grid's levels (128 per side) and spread back over the bins that were
 *   non-empty; the T whose Q loses least information, KL(P‖Q), wins.
 * - mse: the clipping range whose quantization error is smallest over the histogram: clipped
 *   values cost their distance to the range's end, the rest the rounding noise step²/12.
 */
import { badInput } from '../errors.js';
import { paramsForRange, type QuantDType, representable } from './params.js';

export const CALIBRATION_METHODS = ['minmax', 'percentile', 'entropy', 'mse'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

export function isCalibrationMethod(s: string): s is CalibrationMethod {
  return (CALIBRATION_METHODS as readonly string[]).includes(s);
}

export interface ObserverOptions {
  /** The grid the range is chosen for (entropy and mse weigh rounding against clipping on it). */
  dtype: QuantDType;
  symmetric: boolean;
  /** percentile: which percentile bounds the range (default 99.99). */
  percentile?: number;
  /** Histogram bins (default 2048). */
  bins?: number;
}

export interface Observer {
  /** True when the observer needs each batch's values; false when the batch's min and max suffice. */
  readonly needsValues: boolean;
  /** One batch: its values (when `needsValues`) and its extremes, when the caller already has them. */
  observe(values: Float32Array | undefined, min: number, max: number): void;
  /** The range chosen; [0, 0] when nothing finite was seen. */
  range(): [number, number];
}

/** Finite extremes of an array (NaN and ±Infinity skipped); [Infinity, -Infinity] when there are none. */
export function extremes(values: Float32Array): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (Number.isFinite(min) && Number.isFinite(max)) return [min, max];
  // Rare: non-finite values present. Redo skipping them.
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isFinite(x)) continue;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return [min, max];
}

export class MinMaxObserver implements Observer {
  readonly needsValues = false;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  observe(values: Float32Array | undefined, min: number, max: number): void {
    if ((!Number.isFinite(min) || !Number.isFinite(max)) && values) [min, max] = extremes(values);
    if (Number.isFinite(min) && min < this.min) this.min = min;
    if (Number.isFinite(max) && max > this.max) this.max = max;
  }

  range(): [number, number] {
    return this.min <= this.max ? [this.min, this.max] : [0, 0];
  }
}

/**
 * A histogram over [origin, origin + bins·width) that grows as data arrives. Growing merges k
 * neighbouring bins into one (k a whole number) after extending the origin left by whole bins,
 * so every old bin lands inside exactly one new bin and no count is split or guessed.
 * In `abs` mode it counts |x| and its origin stays at 0.
 */
export class Histogram {
  readonly bins: number;
  readonly abs: boolean;
  counts: Float64Array;
  origin = 0;
  width = 0;
  total = 0;
  /** Values exactly 0 (counted in their bin too): a ReLU's floor, which every grid represents exactly. */
  zeros = 0;
  /** Finite extremes of the data seen (of |x| in abs mode). */
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(bins = 2048, abs = false) {
    this.bins = bins;
    this.abs = abs;
    this.counts = new Float64Array(bins);
  }

  /** Adds a batch whose finite extremes are [min, max] (of the raw values; abs mode folds them). */
  add(values: Float32Array, min: number, max: number): void {
    if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = extremes(values);
    if (!(min <= max)) return;
    if (this.abs) {
      const a = Math.max(Math.abs(min), Math.abs(max));
      [min, max] = [min <= 0 && max >= 0 ? 0 : Math.min(Math.abs(min), Math.abs(max)), a];
    }
    this.cover(min, max);
    const counts = this.counts;
    const last = this.bins - 1;
    const origin = this.origin;
    const inv = 1 / this.width;
    let n = 0;
    let zeros = 0;
    if (this.abs) {
      for (let i = 0; i < values.length; i++) {
        const x = Math.abs(values[i]);
        if (!(x <= max)) continue; // NaN or ±Infinity
        if (x === 0) zeros++;
        const b = Math.floor((x - origin) * inv);
        counts[b > last ? last : Math.max(b, 0)]++;
        n++;
      }
    } else {
      for (let i = 0; i < values.length; i++) {
        const x = values[i];
        if (!(x >= min && x <= max)) continue;
        if (x === 0) zeros++;
        const b = Math.floor((x - origin) * inv);
        counts[b > last ? last : Math.max(b, 0)]++;
        n++;
      }
    }
    this.total += n;
    this.zeros += zeros;
  }

  /** Makes the histogram's span cover [min, max]. */
  private cover(min: number, max: number): void {
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    if (this.width === 0) {
      this.origin = this.abs ? 0 : min;
      const span = max - this.origin;
      // A first batch of one value: a tiny span that later batches widen by merging.
      this.width = span > 0 ? span / this.bins : Math.max(Math.abs(max) * 1e-6, 1e-30);
      return;
    }
    const end = this.origin + this.bins * this.width;
    if (min >= this.origin && max <= end) return;
    // Extend left by j fine bins, then merge k fine bins into one so the span reaches max.
    const j = min < this.origin ? Math.ceil((this.origin - min) / this.width) : 0;
    const newOrigin = this.origin - j * this.width;
    const reach = Math.max(max, end);
    let k = Math.max(1, Math.ceil((reach - newOrigin) / (this.bins * this.width)));
    while (newOrigin + this.bins * k * this.width < reach) k++;
    const merged = new Float64Array(this.bins);
    for (let t = 0; t < this.bins; t++) {
      if (this.counts[t] !== 0) merged[Math.min(this.bins - 1, Math.floor((t + j) / k))] += this.counts[t];
    }
    this.counts = merged;
    this.origin = newOrigin;
    this.width *= k;
  }

  /** The value below which a fraction `q` of the counts lies (linear within a bin). */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const target = q * this.total;
    let acc = 0;
    for (let b = 0; b < this.bins; b++) {
      const c = this.counts[b];
      if (acc + c >= target && c > 0) {
        const frac = (target - acc) / c;
        const x = this.origin + (b + frac) * this.width;
        return Math.min(this.max, Math.max(this.abs ? 0 : this.min, x));
      }
      acc += c;
    }
    return this.max;
  }
}

abstract class HistogramObserver implements Observer {
  readonly needsValues = true;
  protected readonly hist: Histogram;
  protected readonly options: ObserverOptions;

  constructor(options: ObserverOptions, abs = false) {
    this.options = options;
    this.hist = new Histogram(options.bins ?? 2048, abs);
  }

  observe(values: Float32Array | undefined, min: number, max: number): void {
    if (!values) throw new Error('a histogram observer needs the values');
    this.hist.add(values, min, max);
  }

  abstract range(): [number, number];
}

export class PercentileObserver extends HistogramObserver {
  range(): [number, number] {
    const h = this.hist;
    if (h.total === 0) return [0, 0];
    const p = (this.options.percentile ?? 99.99) / 100;
    // One-sided data (a ReLU's output) keeps its floor; each tail of two-sided data is cut alone.
    const lo = h.min >= 0 ? h.min : h.quantile(1 - p);
    const hi = h.max <= 0 ? h.max : h.quantile(p);
    return [Math.min(lo, hi), Math.max(lo, hi)];
  }
}

export class EntropyObserver extends HistogramObserver {
  private signedMin = Number.POSITIVE_INFINITY;
  private signedMax = Number.NEGATIVE_INFINITY;

  constructor(options: ObserverOptions) {
    super(options, true);
  }

  override observe(values: Float32Array | undefined, min: number, max: number): void {
    if (!values) throw new Error('the entropy observer needs the values');
    if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = extremes(values);
    if (min < this.signedMin) this.signedMin = min;
    if (max > this.signedMax) this.signedMax = max;
    this.hist.add(values, min, max);
  }

  range(): [number, number] {
    if (this.hist.total === 0) return [0, 0];
    // Levels per side of zero: 128 on a signed grid; a one-sided tensor on an asymmetric grid has all 256.
    const oneSided = this.signedMin >= 0 && !this.options.symmetric;
    const t = klThreshold(this.hist, oneSided ? 256 : 128);
    return [Math.max(this.signedMin, -t), Math.min(this.signedMax, t)];
  }
}

/**
 * TensorRT's entropy calibration over a histogram of |x|: the threshold (an upper bin edge) whose
 * clipped-and-quantized distribution is closest, in KL divergence, to the clipped original.
 * Exact zeros are left out (see below).
 * Candidates step so that at most ~256 are tried.
 */
export function klThreshold(hist: Histogram, levels: number): number {
  // Exact zeros (a ReLU's floor, padding) quantize without error on any grid: left out, they
  // would make a spike no merged level can follow, and push the threshold far too low.
  const counts = Float64Array.from(hist.counts);
  counts[0] = Math.max(0, counts[0] - hist.zeros);
  const bins = hist.bins;
  if (bins <= levels) return hist.max;
  const step = Math.max(1, Math.floor((bins - levels) / 256));
  const suffix = new Float64Array(bins + 1);
  for (let b = bins - 1; b >= 0; b--) suffix[b] = suffix[b + 1] + counts[b];
  let best = bins;
  let bestKl = Number.POSITIVE_INFINITY;
  const q = new Float64Array(bins);
  for (let i = levels; i <= bins; i += step) {
    // P: bins [0, i) with the outliers added to the last one.
    const pTotal = suffix[0];
    if (pTotal === 0) break;
    // Q: bins [0, i) merged into `levels` groups, each group's count spread over its non-empty bins.
    let qTotal = 0;
    for (let g = 0; g < levels; g++) {
      const start = Math.floor((g * i) / levels);
      const end = Math.floor(((g + 1) * i) / levels);
      let sum = 0;
      let nonzero = 0;
      for (let b = start; b < end; b++) {
        sum += counts[b];
        if (counts[b] > 0) nonzero++;
      }
      const each = nonzero > 0 ? sum / nonzero : 0;
      for (let b = start; b < end; b++) q[b] = counts[b] > 0 ? each : 0;
      qTotal += sum;
    }
    if (qTotal === 0) continue;
    let kl = 0;
    for (let b = 0; b < i; b++) {
      const pc = b === i - 1 ? counts[b] + suffix[i] : counts[b];
      if (pc === 0) continue;
      const p = pc / pTotal;
      // An empty Q bin where P has mass: smoothed, so it costs much but stays finite.
      const qq = Math.max(q[b] / qTotal, 1e-12);
      kl += p * Math.log(p / qq);
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return Math.min(hist.max, hist.origin + best * hist.width);
}

export class MseObserver extends HistogramObserver {
  range(): [number, number] {
    const h = this.hist;
    if (h.total === 0) return [0, 0];
    return mseRange(h, this.options.dtype, this.options.symmetric);
  }
}

/**
 * Expected squared error of quantizing the histogram's data on the grid for [lo, hi]: values
 * outside the representable range clip to its ends, values inside are off by step²/12 on average.
 */
export function quantizationMse(h: Histogram, lo: number, hi: number, dtype: QuantDType, symmetric: boolean): number {
  const p = paramsForRange(lo, hi, dtype, symmetric);
  const [rlo, rhi] = representable(p);
  const noise = (p.scale * p.scale) / 12;
  let err = 0;
  for (let b = 0; b < h.bins; b++) {
    const c = h.counts[b];
    if (c === 0) continue;
    const x = h.origin + (b + 0.5) * h.width;
    if (x < rlo) err += c * (x - rlo) * (x - rlo);
    else if (x > rhi) err += c * (x - rhi) * (x - rhi);
    else err += c * noise;
  }
  return err / h.total;
}

/**
 * The MSE-optimal range: first both ends shrunk together by a common factor, then each end alone
 * over its whole span with the other fixed (coordinate descent, 100 steps each).
 */
export function mseRange(h: Histogram, dtype: QuantDType, symmetric: boolean): [number, number] {
  const min = Math.min(h.min, 0);
  const max = Math.max(h.max, 0);
  const steps = 100;
  let bestLo = min;
  let bestHi = max;
  let best = quantizationMse(h, min, max, dtype, symmetric);
  const consider = (lo: number, hi: number): void => {
    const e = quantizationMse(h, lo, hi, dtype, symmetric);
    if (e < best) {
      best = e;
      bestLo = lo;
      bestHi = hi;
    }
  };
  for (let s = 1; s < steps; s++) consider((min * s) / steps, (max * s) / steps);
  if (!symmetric) {
    // Each end over its whole span, the other held at the best so far.
    const lo0 = bestLo;
    if (max > 0) for (let s = 1; s <= steps; s++) consider(lo0, (max * s) / steps);
    const hi1 = bestHi;
    if (min < 0) for (let s = 1; s <= steps; s++) consider((min * s) / steps, hi1);
  }
  return [Math.max(h.min, bestLo), Math.min(h.max, bestHi)];
}

export function createObserver(method: CalibrationMethod, options: ObserverOptions): Observer {
  switch (method) {
    case 'minmax':
      return new MinMaxObserver();
    case 'percentile': {
      const p = options.percentile ?? 99.99;
      if (!(p > 50 && p <= 100)) throw badInput(`percentile ${p}: expected a number in (50, 100]`);
      return new PercentileObserver(options);
    }
    case 'entropy':
      return new EntropyObserver(options);
    case 'mse':
      return new MseObserver(options);
  }
}
