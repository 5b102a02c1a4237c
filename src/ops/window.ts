/**
 * The sliding-window geometry every windowed op shares (convolutions in conv.ts, pools in
 * pool.ts, Col2Im): a window of `kernel_shape` taps spaced by `dilations`, moved by `strides`,
 * over an input padded by `pads` (or by `auto_pad`). The shape rules and the kernels both go
 * through these helpers, so the output-size formula exists once.
 * Spec: https://onnx.ai/onnx/operators/onnx__Conv.html, https://onnx.ai/onnx/operators/onnx__MaxPool.html
 */
import { shapeSize } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { GradContext, InferContext, KernelContext } from './schema.js';
import { listAttr, strides } from './util.js';

type Ctx = InferContext | KernelContext | GradContext;

// ---------------------------------------------------------------- window geometry

/** The sliding-window attributes of a convolution or pool over `kernel.length` spatial axes. */
export interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Explicit pads: all begins, then all ends. Only used when autoPad is NOTSET. */
  pads: number[];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
  ceil: boolean;
}

const AUTO_PADS = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'] as const;

export function windowOf(ctx: Ctx, kernel: readonly number[]): Window {
  const n = kernel.length;
  const ones = new Array<number>(n).fill(1);
  const autoPad = ctx.node.str('auto_pad', 'NOTSET') || 'NOTSET';
  const w: Window = {
    kernel: [...kernel],
    strides: listAttr(ctx, 'strides', ones),
    dilations: listAttr(ctx, 'dilations', ones),
    pads: listAttr(ctx, 'pads', new Array<number>(2 * n).fill(0)),
    autoPad: AUTO_PADS.find((p) => p === autoPad) ?? ctx.fail(`unknown auto_pad ${autoPad}`),
    ceil: ctx.node.int('ceil_mode', 0) === 1,
  };
  if (w.strides.length !== n) ctx.fail(`strides has ${w.strides.length} entries for ${n} spatial axes`);
  if (w.dilations.length !== n) ctx.fail(`dilations has ${w.dilations.length} entries for ${n} spatial axes`);
  if (w.pads.length !== 2 * n) ctx.fail(`pads has ${w.pads.length} entries for ${n} spatial axes`);
  if (w.kernel.some((k) => k < 1)) ctx.fail(`kernel_shape [${w.kernel}] has a non-positive entry`);
  if (w.strides.some((s) => s < 1)) ctx.fail(`strides [${w.strides}] has a non-positive entry`);
  if (w.dilations.some((d) => d < 1)) ctx.fail(`dilations [${w.dilations}] has a non-positive entry`);
  if (w.pads.some((p) => p < 0)) ctx.fail(`pads [${w.pads}] has a negative entry`);
  return w;
}

/** Extent of the dilated kernel along axis i. */
export function extent(w: Window, i: number): number {
  return (w.kernel[i] - 1) * w.dilations[i] + 1;
}

export const isSame = (w: Window): boolean => w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER';

/** Begin and end padding of axis i for an input of `size`, with auto_pad resolved. */
export function padsAt(w: Window, i: number, size: number): [number, number] {
  if (isSame(w)) {
    // SAME keeps ceil(size / stride) outputs; the odd pad goes at the end (UPPER) or begin (LOWER).
    const out = Math.ceil(size / w.strides[i]);
    const total = Math.max(0, (out - 1) * w.strides[i] + extent(w, i) - size);
    const half = Math.floor(total / 2);
    return w.autoPad === 'SAME_UPPER' ? [half, total - half] : [total - half, half];
  }
  if (w.autoPad === 'VALID') return [0, 0];
  return [w.pads[i], w.pads[i + w.kernel.length]];
}

/** Number of window positions along axis i (the Conv/Pool output-size formula). */
function outputLength(w: Window, i: number, size: number): number {
  if (isSame(w)) return Math.ceil(size / w.strides[i]);
  const [begin, end] = padsAt(w, i, size);
  const span = size + begin + end - extent(w, i);
  if (!w.ceil) return Math.floor(span / w.strides[i]) + 1;
  // ceil_mode keeps a partial last window, but not one that would start in the end padding.
  const out = Math.ceil(span / w.strides[i]) + 1;
  return (out - 1) * w.strides[i] >= size + begin ? out - 1 : out;
}

/** Output dim of axis i; a symbolic input dim survives only when the window preserves the length. */
export function outputDim(ctx: InferContext, w: Window, i: number, d: Dim): Dim {
  if (typeof d === 'number') {
    const out = outputLength(w, i, d);
    if (out < 1 && d > 0) ctx.fail(`spatial axis ${i} of length ${d} is shorter than the kernel extent ${extent(w, i)}`);
    return Math.max(out, 0);
  }
  if (d === null || w.strides[i] !== 1) return null;
  if (isSame(w)) return d;
  const pad = w.autoPad === 'VALID' ? 0 : w.pads[i] + w.pads[i + w.kernel.length];
  return pad === extent(w, i) - 1 ? d : null;
}

/** Tap codes for window positions off the input: inside the padding, or past it (ceil_mode's last window). */
export const PAD = -1;
const BEYOND = -2;

/**
 * For each position of `positions` and each kernel offset (both row-major), the flat index into
 * `target` of `position·stride − begin + offset·dilation`, or PAD/BEYOND. Pools and convolutions
 * read their windows through it; ConvTranspose and Col2Im scatter through it (the same map with
 * input and output swapped).
 */
export function windowTaps(
  target: readonly number[],
  positions: readonly number[],
  w: Window,
  begins: readonly number[],
  ends: readonly number[],
): Int32Array {
  const r = target.length;
  const kCount = shapeSize(w.kernel);
  const pCount = shapeSize(positions);
  const tStrides = strides(target);
  const taps = new Int32Array(pCount * kCount);
  const pos = new Array<number>(r).fill(0);
  for (let p = 0; p < pCount; p++) {
    let rest = p;
    for (let a = r - 1; a >= 0; a--) {
      pos[a] = rest % positions[a];
      rest = Math.floor(rest / positions[a]);
    }
    for (let k = 0; k < kCount; k++) {
      let krest = k;
      let flat = 0;
      let code = 0;
      for (let a = r - 1; a >= 0; a--) {
        const j = krest % w.kernel[a];
        krest = Math.floor(krest / w.kernel[a]);
        const c = pos[a] * w.strides[a] - begins[a] + j * w.dilations[a];
        if (c < -begins[a] || c >= target[a] + ends[a]) code = BEYOND;
        else if (c < 0 || c >= target[a]) code = code === 0 ? PAD : code;
        else flat += c * tStrides[a];
      }
      taps[p * kCount + k] = code === 0 ? flat : code;
    }
  }
  return taps;
}

/** A window's resolved geometry over a concrete input: pads, output dims and the tap table. */
export interface Resolved {
  w: Window;
  inDims: number[];
  outDims: number[];
  taps: Int32Array;
}

export function resolveWindow(ctx: KernelContext, w: Window, inDims: readonly number[]): Resolved {
  const pads = inDims.map((d, i) => padsAt(w, i, d));
  const outDims = inDims.map((d, i) => outputLength(w, i, d));
  if (outDims.some((d) => d < 0)) ctx.fail(`input [${inDims}] is smaller than the kernel window [${w.kernel}]`);
  const taps = windowTaps(
    inDims,
    outDims,
    w,
    pads.map((p) => p[0]),
    pads.map((p) => p[1]),
  );
  return { w, inDims: [...inDims], outDims, taps };
}

/** Input rank check shared by the [N, C, spatial…] ops. */
export function spatialShape(ctx: InferContext, i: number): Shape | undefined {
  const s = ctx.shape(i);
  if (s && s.length < 3) ctx.fail(`input ${i} has rank ${s.length}; expected [N, C, spatial...]`);
  return s;
}
