/**
 * Signal processing: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix. Complex
 * values are a trailing axis of 2 (real, imaginary); real signals may use a trailing axis of 1.
 * Transforms are plain O(n²) sums in float64: correct and simple, not fast.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { type DType, dtypeFromCode } from '../ir/dtype.js';
import { shapeSize, type Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { fromNumbers, numbers } from './util.js';

/** output_datatype attribute (default float32). */
function outputDtype(ctx: InferContext | KernelContext): DType {
  const code = ctx.node.int('output_datatype', 1);
  const dtype = dtypeFromCode(code);
  if (!dtype) return ctx.fail(`unknown output_datatype ${code}`);
  return dtype;
}

/** The value of a scalar integer input as a dim: a number when constant, a symbol when propagated. */
function scalarDim(ctx: InferContext, i: number): Dim | undefined {
  const s = ctx.symbolic(i);
  if (s && s.length === 1) return s[0];
  const c = ctx.constant(i);
  return c && c.size === 1 ? numbers(c)[0] : undefined;
}

/** Bins kept by a one-sided transform of length n. */
function onesidedBins(n: Dim): Dim {
  return typeof n === 'number' ? Math.floor(n / 2) + 1 : null;
}

// ---------------------------------------------------------------- DFT core

/**
 * One-dimensional DFT of `n` complex samples read through `at` (missing samples are zero),
 * producing `bins` outputs. The inverse uses the positive exponent and divides by `n`.
 */
function dft1d(at: (k: number) => [number, number], available: number, n: number, bins: number, inverse: boolean): Float64Array {
  const out = new Float64Array(bins * 2);
  const sign = inverse ? 1 : -1;
  const m = Math.min(available, n);
  for (let k = 0; k < bins; k++) {
    let re = 0;
    let im = 0;
    for (let t = 0; t < m; t++) {
      const [a, b] = at(t);
      // Reduce k·t mod n first, so the angle stays small and exact for long transforms.
      const angle = (sign * 2 * Math.PI * ((k * t) % n)) / n;
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      re += a * c - b * s;
      im += a * s + b * c;
    }
    out[2 * k] = inverse ? re / n : re;
    out[2 * k + 1] = inverse ? im / n : im;
  }
  return out;
}

// ---------------------------------------------------------------- DFT

/** DFT's axis: an attribute (default 1) before opset 20, then an optional input (default -2). */
function dftAxis(ctx: InferContext | KernelContext, rank: number, fromInput: number | undefined): number {
  const axis = ctx.opset < 20 ? ctx.node.int('axis', 1) : (fromInput ?? -2);
  // The last axis holds the complex parts, so a signal axis is one of the others.
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank - 1) return ctx.fail(`DFT axis ${axis} is out of range for rank ${rank}`);
  return a;
}

const dft: OpSchema = {
  op: 'DFT',
  attrs: { axis: 'int', inverse: 'int', onesided: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, dtype, undefined);
    const rank = shape.length;
    const last = shape[rank - 1];
    if (rank < 2) ctx.fail(`DFT input needs rank ≥ 2, got ${rank}`);
    if (typeof last === 'number' && last !== 1 && last !== 2) ctx.fail(`DFT input's last dim must be 1 or 2, got ${last}`);
    const onesided = ctx.node.int('onesided', 0) === 1;
    const lengthGiven = ctx.hasInput(1);
    const out: Shape = [...shape.slice(0, -1), 2];
    if (!onesided && !lengthGiven) return ctx.output(0, dtype, out);
    let axisInput: number | undefined;
    if (ctx.opset >= 20 && ctx.hasInput(2)) {
      const a = scalarDim(ctx, 2);
      if (typeof a !== 'number') {
        // Which axis changes is unknown: every signal dim may.
        return ctx.output(0, dtype, [...shape.slice(0, -1).map(() => null), 2]);
      }
      axisInput = a;
    }
    const axis = dftAxis(ctx, rank, axisInput);
    const n = lengthGiven ? (scalarDim(ctx, 1) ?? null) : shape[axis];
    out[axis] = onesided ? onesidedBins(n) : n;
    ctx.output(0, dtype, out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const rank = x.rank;
    const lengthInput = ctx.optional(1);
    const axisInput = ctx.opset >= 20 ? ctx.optional(2) : undefined;
    const axis = dftAxis(ctx, rank, axisInput ? numbers(axisInput)[0] : undefined);
    const n = lengthInput ? numbers(lengthInput)[0] : x.dims[axis];
    if (!(n > 0)) ctx.fail(`dft_length must be positive, got ${n}`);
    const bins = ctx.node.int('onesided', 0) === 1 ? Math.floor(n / 2) + 1 : n;
    const out = transformAxis(x, axis, n, bins, ctx.node.int('inverse', 0) === 1);
    return [fromNumbers(x.dtype, out.dims, out.values)];
  },
};

/** Applies dft1d along `axis` of a [..., 1|2] tensor; returns the [..., bins at axis, ..., 2] result. */
function transformAxis(x: Tensor, axis: number, n: number, bins: number, inverse: boolean): { dims: number[]; values: Float64Array } {
  const v = numbers(x);
  const comps = x.dims[x.rank - 1];
  const len = x.dims[axis];
  const outer = shapeSize(x.dims.slice(0, axis));
  const inner = shapeSize(x.dims.slice(axis + 1, -1));
  const dims = [...x.dims];
  dims[axis] = bins;
  dims[dims.length - 1] = 2;
  const values = new Float64Array(shapeSize(dims));
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const at = (t: number): [number, number] => {
        const base = ((o * len + t) * inner + r) * comps;
        return [v[base], comps === 2 ? v[base + 1] : 0];
      };
      const res = dft1d(at, len, n, bins, inverse);
      for (let k = 0; k < bins; k++) {
        const base = ((o * bins + k) * inner + r) * 2;
        values[base] = res[2 * k];
        values[base + 1] = res[2 * k + 1];
      }
    }
  }
  return { dims, values };
}

// ---------------------------------------------------------------- STFT

/** Frame length: the frame_length input, else the window's length. */
function frameLength(ctx: InferContext): Dim | undefined {
  if (ctx.hasInput(3)) return scalarDim(ctx, 3) ?? null;
  if (ctx.hasInput(2)) return ctx.shape(2)?.[0] ?? null;
  return undefined;
}

const stft: OpSchema = {
  op: 'STFT',
  attrs: { onesided: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    if (shape && shape.length !== 3) ctx.fail(`STFT signal must have rank 3, got ${shape.length}`);
    const batch = shape?.[0] ?? null;
    const length = shape?.[1] ?? null;
    // Without a window or frame_length the whole signal is one frame.
    const fl = frameLength(ctx) ?? length;
    const step = scalarDim(ctx, 1);
    let frames: Dim = null;
    if (typeof length === 'number' && typeof fl === 'number' && typeof step === 'number') {
      if (step <= 0) ctx.fail(`frame_step must be positive, got ${step}`);
      if (fl > length) ctx.fail(`frame length ${fl} exceeds the signal length ${length}`);
      frames = Math.floor((length - fl) / step) + 1;
    }
    const bins = ctx.node.int('onesided', 1) === 1 ? onesidedBins(fl) : fl;
    ctx.output(0, dtype, [batch, frames, bins, 2]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const [batch, length, comps] = x.dims;
    const step = numbers(ctx.input(1))[0];
    const window = ctx.optional(2);
    const flInput = ctx.optional(3);
    const fl = flInput ? numbers(flInput)[0] : window ? window.dims[0] : length;
    if (!(step > 0)) ctx.fail(`frame_step must be positive, got ${step}`);
    if (window && window.dims[0] !== fl) ctx.fail(`window length ${window.dims[0]} differs from frame_length ${fl}`);
    if (fl > length) ctx.fail(`frame length ${fl} exceeds the signal length ${length}`);
    const w = window ? numbers(window) : undefined;
    const frames = Math.floor((length - fl) / step) + 1;
    const bins = ctx.node.int('onesided', 1) === 1 ? Math.floor(fl / 2) + 1 : fl;
    const v = numbers(x);
    const out = new Float64Array(batch * frames * bins * 2);
    for (let b = 0; b < batch; b++) {
      for (let f = 0; f < frames; f++) {
        const at = (t: number): [number, number] => {
          const base = (b * length + f * step + t) * comps;
          const scale = w ? w[t] : 1;
          return [v[base] * scale, comps === 2 ? v[base + 1] * scale : 0];
        };
        out.set(dft1d(at, fl, fl, bins, false), (b * frames + f) * bins * 2);
      }
    }
    return [fromNumbers(x.dtype, [batch, frames, bins, 2], out)];
  },
};

// ---------------------------------------------------------------- windows

/**
 * A generalised cosine window a0 − a1·cos(2πn/N) + a2·cos(4πn/N), where N is the size for a
 * periodic window and size − 1 for a symmetric one.
 */
function cosineWindow(op: string, a0: number, a1: number, a2: number): OpSchema {
  return {
    op,
    attrs: { output_datatype: 'int', periodic: 'int' },
    infer(ctx) {
      const size = scalarDim(ctx, 0);
      if (typeof size === 'number' && size < 0) ctx.fail(`window size must not be negative, got ${size}`);
      ctx.output(0, outputDtype(ctx), [size ?? ctx.freshDim('window')]);
    },
    kernel(ctx) {
      const size = numbers(ctx.input(0))[0];
      const N = ctx.node.int('periodic', 1) === 1 ? size : size - 1;
      const out = new Float64Array(size);
      for (let n = 0; n < size; n++) {
        const t = (2 * Math.PI * n) / N;
        out[n] = a0 - a1 * Math.cos(t) + a2 * Math.cos(2 * t);
      }
      return [fromNumbers(outputDtype(ctx), [size], out)];
    },
  };
}

// ---------------------------------------------------------------- MelWeightMatrix

/** Triangular mel filters, [floor(dft_length/2) + 1, num_mel_bins], peaks at 1. */
function melWeights(numMel: number, dftLength: number, sampleRate: number, lower: number, upper: number): Float64Array {
  const specBins = Math.floor(dftLength / 2) + 1;
  const toMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
  const lowMel = toMel(lower);
  const step = (toMel(upper) - lowMel) / (numMel + 2);
  // Edges of the triangles, as spectrogram bin indices.
  const edges = Array.from({ length: numMel + 2 }, (_, i) => {
    const hz = 700 * (10 ** ((i * step + lowMel) / 2595) - 1);
    return Math.trunc(Math.floor(((dftLength + 1) * hz) / sampleRate));
  });
  const out = new Float64Array(specBins * numMel);
  const set = (bin: number, mel: number, v: number): void => {
    if (bin >= 0 && bin < specBins) out[bin * numMel + mel] = v;
  };
  for (let i = 0; i < numMel; i++) {
    const [lo, center, hi] = [edges[i], edges[i + 1], edges[i + 2]];
    if (center === lo) set(center, i, 1);
    else for (let j = lo; j <= center; j++) set(j, i, (j - lo) / (center - lo));
    for (let j = center; j < hi; j++) set(j, i, (hi - j) / (hi - center));
  }
  return out;
}

const melWeightMatrix: OpSchema = {
  op: 'MelWeightMatrix',
  attrs: { output_datatype: 'int' },
  infer(ctx) {
    const mel = scalarDim(ctx, 0);
    const len = scalarDim(ctx, 1);
    const bins = typeof len === 'number' ? Math.floor(len / 2) + 1 : ctx.freshDim('spectrogram_bins');
    ctx.output(0, outputDtype(ctx), [bins, mel ?? ctx.freshDim('mel_bins')]);
  },
  kernel(ctx) {
    const [numMel, dftLength, sampleRate, lower, upper] = [0, 1, 2, 3, 4].map((i) => numbers(ctx.input(i))[0]);
    if (!(numMel > 0) || !(dftLength > 0) || !(sampleRate > 0)) ctx.fail('num_mel_bins, dft_length and sample_rate must be positive');
    const values = melWeights(numMel, dftLength, sampleRate, lower, upper);
    return [fromNumbers(outputDtype(ctx), [Math.floor(dftLength / 2) + 1, numMel], values)];
  },
};

export const SIGNAL_OPS: OpSchema[] = [
  dft,
  stft,
  cosineWindow('HannWindow', 0.5, 0.5, 0),
  cosineWindow('HammingWindow', 25 / 46, 21 / 46, 0),
  cosineWindow('BlackmanWindow', 0.42, 0.5, 0.08),
  melWeightMatrix,
];
