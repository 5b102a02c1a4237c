/**
 * Neural-network operators: convolutions (Conv, ConvTranspose, ConvInteger, QLinearConv,
 * DeformConv, Col2Im), pooling (Average/Max/LpPool, their Global forms, MaxUnpool),
 * normalizations (Batch, Instance, Layer, Group, LRN, MeanVarianceNormalization), Dropout, and
 * Softmax/LogSoftmax/Hardmax. Spec: https://onnx.ai/onnx/operators/
 *
 * Every windowed op (convolutions, pools, Col2Im) shares one geometry: a window of
 * `kernel_shape` taps spaced by `dilations`, moved by `strides`, over an input padded by `pads`
 * (or by `auto_pad`). The shape rules and the kernels both go through the helpers below, so the
 * output-size formula exists once.
 */
import { dimDiv, dimMul, dimProduct } from '../ir/dims.js';
import { type DType, dtypeFromCode, valueRange } from '../ir/dtype.js';
import { shapeSize, type Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import {
  axisOf,
  broadcastIndices,
  fromNumbers,
  numbers,
  roundHalfEven,
  sameAsInput,
  stridedIndices,
  strides,
  unknownDims,
} from './util.js';

type Ctx = InferContext | KernelContext;

// ---------------------------------------------------------------- window geometry

/** The sliding-window attributes of a convolution or pool over `kernel.length` spatial axes. */
interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Explicit pads: all begins, then all ends. Only used when autoPad is NOTSET. */
  pads: number[];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
  ceil: boolean;
}

const AUTO_PADS = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'] as const;

/** A list attribute, or `fallback` when it is absent or written as an empty list. */
function listAttr(ctx: Ctx, name: string, fallback: number[]): number[] {
  const v = ctx.node.ints(name);
  return v && v.length > 0 ? v : fallback;
}

function windowOf(ctx: Ctx, kernel: readonly number[]): Window {
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
function extent(w: Window, i: number): number {
  return (w.kernel[i] - 1) * w.dilations[i] + 1;
}

const isSame = (w: Window): boolean => w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER';

/** Begin and end padding of axis i for an input of `size`, with auto_pad resolved. */
function padsAt(w: Window, i: number, size: number): [number, number] {
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
function outputDim(ctx: InferContext, w: Window, i: number, d: Dim): Dim {
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
const PAD = -1;
const BEYOND = -2;

/**
 * For each position of `positions` and each kernel offset (both row-major), the flat index into
 * `target` of `position·stride − begin + offset·dilation`, or PAD/BEYOND. Pools and convolutions
 * read their windows through it; ConvTranspose and Col2Im scatter through it (the same map with
 * input and output swapped).
 */
function windowTaps(
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
interface Resolved {
  w: Window;
  inDims: number[];
  outDims: number[];
  taps: Int32Array;
}

function resolveWindow(ctx: KernelContext, w: Window, inDims: readonly number[]): Resolved {
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
function spatialShape(ctx: InferContext, i: number): Shape | undefined {
  const s = ctx.shape(i);
  if (s && s.length < 3) ctx.fail(`input ${i} has rank ${s.length}; expected [N, C, spatial...]`);
  return s;
}

// ---------------------------------------------------------------- Conv, ConvInteger, QLinearConv

/** Kernel shape from the attribute, or from the weights' spatial dims. */
function kernelShape(ctx: InferContext, wShape: Shape | undefined): number[] | undefined {
  const attr = ctx.node.ints('kernel_shape');
  if (attr && attr.length > 0) return attr;
  const k = wShape?.slice(2);
  return k?.every((d) => typeof d === 'number') ? (k as number[]) : undefined;
}

/** Conv-style output shape [N, M, spatial…] from data input `xi` and weights `wi`; undefined when X's rank is unknown. */
function convShape(ctx: InferContext, xi: number, wi: number): Shape | undefined {
  const x = spatialShape(ctx, xi);
  const wShape = ctx.shape(wi);
  if (!x) return undefined;
  const group = ctx.node.int('group', 1);
  if (group < 1) ctx.fail(`group ${group} must be positive`);
  const m = wShape ? wShape[0] : null;
  if (wShape) {
    if (wShape.length !== x.length) ctx.fail(`weights have rank ${wShape.length} but the input has rank ${x.length}`);
    const c = x[1];
    const cw = wShape[1];
    if (typeof c === 'number' && typeof cw === 'number' && c !== cw * group)
      ctx.fail(`input has ${c} channels but the weights take ${cw} per group × ${group} groups`);
    if (typeof m === 'number' && m % group !== 0) ctx.fail(`${m} output channels do not split into ${group} groups`);
  }
  const kernel = kernelShape(ctx, wShape);
  const spatial = x.slice(2);
  if (!kernel) return [x[0], m, ...spatial.map(() => null)];
  if (kernel.length !== spatial.length) ctx.fail(`kernel_shape has ${kernel.length} entries for ${spatial.length} spatial axes`);
  const w = windowOf(ctx, kernel);
  return [x[0], m, ...spatial.map((d, i) => outputDim(ctx, w, i, d))];
}

function convInfer(ctx: InferContext, dtype: DType | undefined, xi: number, wi: number): void {
  ctx.output(0, dtype, convShape(ctx, xi, wi));
}

interface ConvTerms {
  /** Subtracted from every input element (ConvInteger/QLinearConv zero point). */
  xZero?: number;
  /** Subtracted from the weights of output channel m: one value, or one per channel. */
  wZero?: ArrayLike<number>;
  bias?: ArrayLike<number>;
}

/**
 * Direct convolution in float64:
 *   out[n, m, o] = bias[m] + Σ_{c in m's group} Σ_k (x[n, c, tap(o, k)] − xZero)·(w[m, c, k] − wZero[m])
 * Padding taps add nothing, as if they held the zero point.
 */
function convolve(ctx: KernelContext, x: Tensor, wt: Tensor, terms: ConvTerms = {}): { dims: number[]; values: Float64Array } {
  if (x.rank < 3 || wt.rank !== x.rank) return ctx.fail(`Conv needs [N, C, spatial...] input and weights of the same rank`);
  const [batch, channels] = x.dims;
  const [outChannels, groupChannels] = wt.dims;
  const group = ctx.node.int('group', 1);
  if (channels !== groupChannels * group || outChannels % group !== 0)
    ctx.fail(`input channels ${channels} and weights [${wt.dims}] do not match group ${group}`);
  const kernel = wt.dims.slice(2);
  const attr = ctx.node.ints('kernel_shape');
  if (attr && attr.length > 0 && attr.join() !== kernel.join()) ctx.fail(`kernel_shape [${attr}] differs from the weights [${kernel}]`);
  const g = resolveWindow(ctx, windowOf(ctx, kernel), x.dims.slice(2));
  const kCount = shapeSize(kernel);
  const inSize = shapeSize(g.inDims);
  const outSize = shapeSize(g.outDims);
  const perGroup = outChannels / group;
  const xv = numbers(x);
  const wv = numbers(wt);
  const xZero = terms.xZero ?? 0;
  const wZero = terms.wZero;
  const out = new Float64Array(batch * outChannels * outSize);
  for (let n = 0; n < batch; n++) {
    for (let m = 0; m < outChannels; m++) {
      const firstChannel = Math.floor(m / perGroup) * groupChannels;
      const wz = wZero ? wZero[wZero.length === 1 ? 0 : m] : 0;
      const base = (n * outChannels + m) * outSize;
      for (let o = 0; o < outSize; o++) {
        let acc = terms.bias ? terms.bias[m] : 0;
        for (let cc = 0; cc < groupChannels; cc++) {
          const xBase = (n * channels + firstChannel + cc) * inSize;
          const wBase = (m * groupChannels + cc) * kCount;
          for (let k = 0; k < kCount; k++) {
            const t = g.taps[o * kCount + k];
            if (t >= 0) acc += (xv[xBase + t] - xZero) * (wv[wBase + k] - wz);
          }
        }
        out[base + o] = acc;
      }
    }
  }
  return { dims: [batch, outChannels, ...g.outDims], values: out };
}

const CONV_ATTRS = {
  auto_pad: 'string',
  dilations: 'ints',
  group: 'int',
  kernel_shape: 'ints',
  pads: 'ints',
  strides: 'ints',
} as const;

const conv: OpSchema = {
  op: 'Conv',
  attrs: CONV_ATTRS,
  infer: (ctx) => convInfer(ctx, ctx.dtype(0), 0, 1),
  kernel(ctx) {
    const x = ctx.input(0);
    const b = ctx.optional(2);
    const { dims, values } = convolve(ctx, x, ctx.input(1), { bias: b ? numbers(b) : undefined });
    return [fromNumbers(x.dtype, dims, values)];
  },
};

/** A zero-point input's elements, or undefined when omitted. */
function zeroPoint(ctx: KernelContext, i: number): ArrayLike<number> | undefined {
  const t = ctx.optional(i);
  return t ? numbers(t) : undefined;
}

const convInteger: OpSchema = {
  op: 'ConvInteger',
  attrs: CONV_ATTRS,
  infer: (ctx) => convInfer(ctx, 'int32', 0, 1),
  kernel(ctx) {
    const xZero = zeroPoint(ctx, 2);
    if (xZero && xZero.length !== 1) ctx.fail('ConvInteger x_zero_point must be a scalar');
    const { dims, values } = convolve(ctx, ctx.input(0), ctx.input(1), { xZero: xZero?.[0], wZero: zeroPoint(ctx, 3) });
    return [fromNumbers('int32', dims, values)];
  },
};

// Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
const qlinearConv: OpSchema = {
  op: 'QLinearConv',
  attrs: CONV_ATTRS,
  infer: (ctx) => convInfer(ctx, ctx.dtype(7) ?? ctx.dtype(0), 0, 3),
  kernel(ctx) {
    const x = ctx.input(0);
    const xScale = numbers(ctx.input(1))[0];
    const xZero = zeroPoint(ctx, 2)?.[0] ?? 0;
    const wScale = numbers(ctx.input(4));
    const yScale = numbers(ctx.input(6))[0];
    const yZeroT = ctx.optional(7);
    const yZero = yZeroT ? numbers(yZeroT)[0] : 0;
    const outDtype = yZeroT?.dtype ?? x.dtype;
    const b = ctx.optional(8);
    // The int32 bias is in the accumulator's scale (x_scale·w_scale, zero point 0): add it before requantizing.
    const { dims, values } = convolve(ctx, x, ctx.input(3), { xZero, wZero: zeroPoint(ctx, 5), bias: b ? numbers(b) : undefined });
    const [lo, hi] = valueRange(outDtype);
    const plane = values.length / (dims[0] * dims[1]);
    for (let i = 0; i < values.length; i++) {
      const m = Math.floor(i / plane) % dims[1];
      const scale = (xScale * wScale[wScale.length === 1 ? 0 : m]) / yScale;
      values[i] = Math.min(hi, Math.max(lo, roundHalfEven(values[i] * scale) + yZero));
    }
    return [fromNumbers(outDtype, dims, values)];
  },
};

// ---------------------------------------------------------------- ConvTranspose

/** The output_shape attribute's spatial part (some exporters write the full [N, C, …] shape). */
function transposeOutputShape(ctx: Ctx, spatialRank: number): number[] | undefined {
  const s = ctx.node.ints('output_shape');
  if (!s || s.length === 0) return undefined;
  if (s.length === spatialRank) return s;
  if (s.length === spatialRank + 2) return s.slice(2);
  return ctx.fail(`output_shape [${s}] does not match ${spatialRank} spatial axes`);
}

function outputPadding(ctx: Ctx, n: number): number[] {
  const p = listAttr(ctx, 'output_padding', new Array<number>(n).fill(0));
  if (p.length !== n) ctx.fail(`output_padding has ${p.length} entries for ${n} spatial axes`);
  return p;
}

/**
 * Begin padding and output length of axis i of a transposed convolution. The full (unpadded)
 * output is stride·(in − 1) + output_padding + extent; explicit pads cut it, SAME or an explicit
 * output_shape fix the length and split the difference (the odd unit at the end for SAME_UPPER,
 * at the begin otherwise). Floor division keeps a negative difference (a longer output) at the end.
 */
function transposeAxis(w: Window, i: number, size: number, outPad: number, target: number | undefined): [number, number] {
  const full = w.strides[i] * (size - 1) + outPad + extent(w, i);
  if (target !== undefined || isSame(w)) {
    const out = target ?? size * w.strides[i];
    const total = full - out;
    const half = Math.floor(total / 2);
    return [w.autoPad === 'SAME_UPPER' ? half : total - half, out];
  }
  if (w.autoPad === 'VALID') return [0, full];
  const n = w.kernel.length;
  return [w.pads[i], full - w.pads[i] - w.pads[i + n]];
}

const convTranspose: OpSchema = {
  op: 'ConvTranspose',
  attrs: { ...CONV_ATTRS, output_padding: 'ints', output_shape: 'ints' },
  infer(ctx) {
    const x = spatialShape(ctx, 0);
    const wShape = ctx.shape(1);
    const dtype = ctx.dtype(0);
    if (!x) return ctx.output(0, dtype, undefined);
    const group = ctx.node.int('group', 1);
    if (wShape) {
      if (wShape.length !== x.length) ctx.fail(`weights have rank ${wShape.length} but the input has rank ${x.length}`);
      if (typeof x[1] === 'number' && typeof wShape[0] === 'number' && x[1] !== wShape[0])
        ctx.fail(`input has ${x[1]} channels but the weights expect ${wShape[0]}`);
    }
    const m = wShape ? dimMul(wShape[1], group) : null;
    const spatial = x.slice(2);
    const n = spatial.length;
    const target = transposeOutputShape(ctx, n);
    if (target) return ctx.output(0, dtype, [x[0], m, ...target]);
    const kernel = kernelShape(ctx, wShape);
    if (!kernel) return ctx.output(0, dtype, [x[0], m, ...spatial.map(() => null)]);
    const w = windowOf(ctx, kernel);
    const outPad = outputPadding(ctx, n);
    const out = spatial.map((d, i): Dim => {
      if (typeof d === 'number') return transposeAxis(w, i, d, outPad[i], undefined)[1];
      if (isSame(w)) return dimMul(d, w.strides[i]);
      // Symbolic length L maps to L exactly when stride is 1 and the pads eat the kernel's extent.
      const pad = w.autoPad === 'VALID' ? 0 : w.pads[i] + w.pads[i + n];
      return w.strides[i] === 1 && outPad[i] + extent(w, i) - 1 - pad === 0 ? d : null;
    });
    ctx.output(0, dtype, [x[0], m, ...out]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const wt = ctx.input(1);
    const b = ctx.optional(2);
    if (x.rank < 3 || wt.rank !== x.rank) return ctx.fail('ConvTranspose needs [N, C, spatial...] input and weights of the same rank');
    const group = ctx.node.int('group', 1);
    const [batch, channels] = x.dims;
    if (wt.dims[0] !== channels || channels % group !== 0) ctx.fail(`weights [${wt.dims}] do not match ${channels} input channels`);
    const perGroup = wt.dims[1];
    const outChannels = perGroup * group;
    const kernel = wt.dims.slice(2);
    const w = windowOf(ctx, kernel);
    const inDims = x.dims.slice(2);
    const n = inDims.length;
    const outPad = outputPadding(ctx, n);
    const target = transposeOutputShape(ctx, n);
    const axes = inDims.map((d, i) => transposeAxis(w, i, d, outPad[i], target?.[i]));
    const outDims = axes.map((a) => a[1]);
    if (outDims.some((d) => d < 0)) ctx.fail(`pads leave a negative output size [${outDims}]`);
    // Each input element scatters its kernel-sized footprint onto the output.
    const taps = windowTaps(
      outDims,
      inDims,
      w,
      axes.map((a) => a[0]),
      new Array<number>(n).fill(0),
    );
    const kCount = shapeSize(kernel);
    const inSize = shapeSize(inDims);
    const outSize = shapeSize(outDims);
    const inPerGroup = channels / group;
    const xv = numbers(x);
    const wv = numbers(wt);
    const bv = b ? numbers(b) : undefined;
    const out = new Float64Array(batch * outChannels * outSize);
    for (let nb = 0; nb < batch; nb++) {
      for (let c = 0; c < channels; c++) {
        const g = Math.floor(c / inPerGroup);
        for (let mm = 0; mm < perGroup; mm++) {
          const outBase = (nb * outChannels + g * perGroup + mm) * outSize;
          const wBase = (c * perGroup + mm) * kCount;
          for (let i = 0; i < inSize; i++) {
            const v = xv[(nb * channels + c) * inSize + i];
            for (let k = 0; k < kCount; k++) {
              const t = taps[i * kCount + k];
              if (t >= 0) out[outBase + t] += v * wv[wBase + k];
            }
          }
        }
      }
      if (bv) for (let m = 0; m < outChannels; m++) for (let o = 0; o < outSize; o++) out[(nb * outChannels + m) * outSize + o] += bv[m];
    }
    return [fromNumbers(x.dtype, [batch, outChannels, ...outDims], out)];
  },
};

// ---------------------------------------------------------------- DeformConv

/** Bilinear sample of one [spatial…] plane at fractional coordinates; taps off the plane read 0. */
function sampleLinearZero(v: ArrayLike<number>, base: number, dims: readonly number[], coords: readonly number[]): number {
  const r = dims.length;
  let total = 0;
  for (let corner = 0; corner < 1 << r; corner++) {
    let weight = 1;
    let flat = 0;
    let inside = true;
    for (let a = 0; a < r; a++) {
      const lo = Math.floor(coords[a]);
      const frac = coords[a] - lo;
      const high = (corner >> a) & 1;
      const c = lo + high;
      weight *= high ? frac : 1 - frac;
      if (c < 0 || c >= dims[a]) inside = false;
      flat = flat * dims[a] + c;
    }
    if (inside && weight !== 0) total += weight * v[base + flat];
  }
  return total;
}

// Inputs: X [N, C, spatial…], W [M, C/group, k…], offset [N, offset_group·|k|·rank, out…], B, mask.
const deformConv: OpSchema = {
  op: 'DeformConv',
  attrs: { dilations: 'ints', group: 'int', kernel_shape: 'ints', offset_group: 'int', pads: 'ints', strides: 'ints' },
  infer(ctx) {
    const out = convShape(ctx, 0, 1);
    // The offsets are laid out over the output positions, so they fill in what the formula cannot.
    const offset = ctx.shape(2);
    if (out && offset && offset.length === out.length) {
      for (let i = 0; i < out.length; i++) if (i !== 1 && out[i] === null) out[i] = offset[i];
    }
    ctx.output(0, ctx.dtype(0), out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const wt = ctx.input(1);
    const offset = ctx.input(2);
    const b = ctx.optional(3);
    const mask = ctx.optional(4);
    const [batch, channels] = x.dims;
    const [outChannels, groupChannels] = wt.dims;
    const group = ctx.node.int('group', 1);
    const offsetGroups = ctx.node.int('offset_group', 1);
    if (channels !== groupChannels * group || channels % offsetGroups !== 0) ctx.fail(`weights [${wt.dims}] do not match the input`);
    const kernel = wt.dims.slice(2);
    const r = kernel.length;
    const w = windowOf(ctx, kernel);
    const inDims = x.dims.slice(2);
    const outDims = offset.dims.slice(2);
    const kCount = shapeSize(kernel);
    if (offset.dims[1] !== offsetGroups * kCount * r)
      ctx.fail(`offset has ${offset.dims[1]} channels; expected ${offsetGroups * kCount * r}`);
    const inSize = shapeSize(inDims);
    const outSize = shapeSize(outDims);
    const xv = numbers(x);
    const wv = numbers(wt);
    const ov = numbers(offset);
    const mv = mask ? numbers(mask) : undefined;
    const bv = b ? numbers(b) : undefined;
    const perGroup = outChannels / group;
    const perOffsetGroup = channels / offsetGroups;
    const out = new Float64Array(batch * outChannels * outSize);
    const pos = new Array<number>(r);
    const kpos = new Array<number>(r);
    const coords = new Array<number>(r);
    for (let n = 0; n < batch; n++) {
      for (let o = 0; o < outSize; o++) {
        let rest = o;
        for (let a = r - 1; a >= 0; a--) {
          pos[a] = rest % outDims[a];
          rest = Math.floor(rest / outDims[a]);
        }
        for (let k = 0; k < kCount; k++) {
          let krest = k;
          for (let a = r - 1; a >= 0; a--) {
            kpos[a] = krest % kernel[a];
            krest = Math.floor(krest / kernel[a]);
          }
          for (let c = 0; c < channels; c++) {
            const og = Math.floor(c / perOffsetGroup);
            // offset is laid out [N, offset_group, k…, axis, out…]; mask [N, offset_group, k…, out…].
            for (let a = 0; a < r; a++) {
              const off = ov[((n * offsetGroups + og) * kCount * r + k * r + a) * outSize + o];
              coords[a] = pos[a] * w.strides[a] - w.pads[a] + kpos[a] * w.dilations[a] + off;
            }
            const weightOfMask = mv ? mv[((n * offsetGroups + og) * kCount + k) * outSize + o] : 1;
            const sample = sampleLinearZero(xv, (n * channels + c) * inSize, inDims, coords) * weightOfMask;
            if (sample === 0) continue;
            const g = Math.floor(c / groupChannels);
            for (let mm = 0; mm < perGroup; mm++) {
              const m = g * perGroup + mm;
              out[(n * outChannels + m) * outSize + o] += sample * wv[(m * groupChannels + (c % groupChannels)) * kCount + k];
            }
          }
        }
        if (bv) for (let m = 0; m < outChannels; m++) out[(n * outChannels + m) * outSize + o] += bv[m];
      }
    }
    return [fromNumbers(x.dtype, [batch, outChannels, ...outDims], out)];
  },
};

// ---------------------------------------------------------------- Col2Im

// Inputs: input [N, C·∏block, L], image_shape, block_shape. Output [N, C, image…].
const col2im: OpSchema = {
  op: 'Col2Im',
  attrs: { dilations: 'ints', pads: 'ints', strides: 'ints' },
  infer(ctx) {
    const x = ctx.shape(0);
    const image = ctx.symbolic(1);
    const block = ctx.symbolic(2);
    const rank = image?.length ?? block?.length ?? (typeof ctx.shape(1)?.[0] === 'number' ? (ctx.shape(1)?.[0] as number) : undefined);
    if (x && x.length !== 3) ctx.fail(`input has rank ${x.length}; expected [N, C*prod(block_shape), L]`);
    if (rank === undefined) return ctx.output(0, ctx.dtype(0), undefined);
    const channels = x && block ? dimDiv(x[1], dimProduct(block)) : null;
    ctx.output(0, ctx.dtype(0), [x ? x[0] : null, channels, ...(image ?? new Array<Dim>(rank).fill(null))]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const image = Array.from(numbers(ctx.input(1)));
    const block = Array.from(numbers(ctx.input(2)));
    const w = windowOf(ctx, block);
    const kCount = shapeSize(block);
    const [batch, rows, length] = x.dims;
    if (rows % kCount !== 0) ctx.fail(`input dim 1 (${rows}) is not a multiple of the block size ${kCount}`);
    const channels = rows / kCount;
    const n = image.length;
    const begins = w.pads.slice(0, n);
    const ends = w.pads.slice(n);
    const blocks = image.map((d, i) => Math.floor((d + begins[i] + ends[i] - extent(w, i)) / w.strides[i]) + 1);
    if (shapeSize(blocks) !== length) ctx.fail(`input holds ${length} blocks but the image has [${blocks}]`);
    const taps = windowTaps(image, blocks, w, begins, ends);
    const imSize = shapeSize(image);
    const xv = numbers(x);
    const out = new Float64Array(batch * channels * imSize);
    for (let nb = 0; nb < batch; nb++) {
      for (let c = 0; c < channels; c++) {
        for (let k = 0; k < kCount; k++) {
          const row = ((nb * channels + c) * kCount + k) * length;
          for (let l = 0; l < length; l++) {
            const t = taps[l * kCount + k];
            if (t >= 0) out[(nb * channels + c) * imSize + t] += xv[row + l];
          }
        }
      }
    }
    return [fromNumbers(x.dtype, [batch, channels, ...image], out)];
  },
};

// ---------------------------------------------------------------- pools

const POOL_ATTRS = {
  auto_pad: 'string',
  ceil_mode: 'int',
  dilations: 'ints',
  kernel_shape: 'ints',
  pads: 'ints',
  strides: 'ints',
} as const;

function poolKernelShape(ctx: Ctx): number[] {
  const k = ctx.node.ints('kernel_shape');
  if (!k || k.length === 0) return ctx.fail('kernel_shape is required');
  return k;
}

/** [N, C, pooled spatial…]; MaxPool's Indices output has the same shape in int64. */
function poolInfer(ctx: InferContext): void {
  const x = spatialShape(ctx, 0);
  const dtype = ctx.dtype(0);
  let out: Shape | undefined;
  if (x) {
    const kernel = poolKernelShape(ctx);
    const spatial = x.slice(2);
    if (kernel.length !== spatial.length) ctx.fail(`kernel_shape has ${kernel.length} entries for ${spatial.length} spatial axes`);
    const w = windowOf(ctx, kernel);
    out = [x[0], x[1], ...spatial.map((d, i) => outputDim(ctx, w, i, d))];
  }
  ctx.output(0, dtype, out);
  if (ctx.hasOutput(1)) ctx.output(1, 'int64', out);
}

/**
 * Runs `reduce` over every window of every [n, c] plane. It gets the plane's values, its base
 * offset and the window's taps, and returns the pooled value.
 */
function poolPlanes(
  ctx: KernelContext,
  x: Tensor,
  reduce: (v: ArrayLike<number>, base: number, taps: Int32Array, from: number, count: number) => number,
): { dims: number[]; values: Float64Array; g: Resolved } {
  if (x.rank < 3) ctx.fail(`input has rank ${x.rank}; expected [N, C, spatial...]`);
  const kernel = poolKernelShape(ctx);
  if (kernel.length !== x.rank - 2) ctx.fail(`kernel_shape has ${kernel.length} entries for ${x.rank - 2} spatial axes`);
  const g = resolveWindow(ctx, windowOf(ctx, kernel), x.dims.slice(2));
  const planes = x.dims[0] * x.dims[1];
  const inSize = shapeSize(g.inDims);
  const outSize = shapeSize(g.outDims);
  const kCount = shapeSize(kernel);
  const v = numbers(x);
  const out = new Float64Array(planes * outSize);
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outSize; o++) out[p * outSize + o] = reduce(v, p * inSize, g.taps, o * kCount, kCount);
  }
  return { dims: [x.dims[0], x.dims[1], ...g.outDims], values: out, g };
}

const averagePool: OpSchema = {
  op: 'AveragePool',
  attrs: { ...POOL_ATTRS, count_include_pad: 'int' },
  infer: poolInfer,
  kernel(ctx) {
    const x = ctx.input(0);
    // count_include_pad divides by the taps inside the padded input; ceil_mode's overhang never counts.
    const includePad = ctx.node.int('count_include_pad', 0) === 1;
    const { dims, values } = poolPlanes(ctx, x, (v, base, taps, from, count) => {
      let sum = 0;
      let n = 0;
      for (let k = from; k < from + count; k++) {
        const t = taps[k];
        if (t >= 0) {
          sum += v[base + t];
          n++;
        } else if (t === PAD && includePad) n++;
      }
      return n > 0 ? sum / n : Number.NaN;
    });
    return [fromNumbers(x.dtype, dims, values)];
  },
};

const lpPool: OpSchema = {
  op: 'LpPool',
  attrs: { ...POOL_ATTRS, p: 'int' },
  infer: poolInfer,
  kernel(ctx) {
    const x = ctx.input(0);
    const p = ctx.node.float('p', 2);
    const { dims, values } = poolPlanes(ctx, x, (v, base, taps, from, count) => {
      let sum = 0;
      for (let k = from; k < from + count; k++) if (taps[k] >= 0) sum += Math.abs(v[base + taps[k]]) ** p;
      return sum ** (1 / p);
    });
    return [fromNumbers(x.dtype, dims, values)];
  },
};

/**
 * Flat index of spatial element `flat` of plane `plane` as MaxPool reports it: over the whole
 * input tensor, row-major (storage_order 0) or column-major within the plane (storage_order 1).
 */
function maxPoolIndex(plane: number, flat: number, dims: readonly number[], columnMajor: boolean): number {
  const size = shapeSize(dims);
  if (!columnMajor) return plane * size + flat;
  let rest = flat;
  let index = 0;
  const coords = new Array<number>(dims.length);
  for (let a = dims.length - 1; a >= 0; a--) {
    coords[a] = rest % dims[a];
    rest = Math.floor(rest / dims[a]);
  }
  for (let a = dims.length - 1; a >= 0; a--) index = index * dims[a] + coords[a];
  return plane * size + index;
}

const maxPool: OpSchema = {
  op: 'MaxPool',
  attrs: { ...POOL_ATTRS, storage_order: 'int' },
  infer: poolInfer,
  kernel(ctx) {
    const x = ctx.input(0);
    const columnMajor = ctx.node.int('storage_order', 0) === 1;
    // The reducer records the winning tap's index so Indices needs no second pass.
    const argmax: number[] = [];
    const { dims, values, g } = poolPlanes(ctx, x, (v, base, taps, from, count) => {
      let best = -Infinity;
      let at = -1;
      for (let k = from; k < from + count; k++) {
        const t = taps[k];
        if (t >= 0 && (at < 0 || v[base + t] > best)) {
          best = v[base + t];
          at = t;
        }
      }
      argmax.push(at);
      return best;
    });
    const outSize = shapeSize(g.outDims);
    const indices = argmax.map((t, i) => maxPoolIndex(Math.floor(i / outSize), t, g.inDims, columnMajor));
    return [fromNumbers(x.dtype, dims, values), fromNumbers('int64', dims, indices)];
  },
};

/** Global pools: one value per [n, c] plane, output [N, C, 1, …]. */
function globalPool(op: string, reduce: (v: ArrayLike<number>, from: number, count: number, ctx: KernelContext) => number): OpSchema {
  return {
    op,
    attrs: op === 'GlobalLpPool' ? { p: 'int' } : undefined,
    infer(ctx) {
      const x = spatialShape(ctx, 0);
      ctx.output(0, ctx.dtype(0), x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined);
    },
    kernel(ctx) {
      const x = ctx.input(0);
      if (x.rank < 3) ctx.fail(`input has rank ${x.rank}; expected [N, C, spatial...]`);
      const planes = x.dims[0] * x.dims[1];
      const size = shapeSize(x.dims.slice(2));
      const v = numbers(x);
      const out = new Float64Array(planes);
      for (let p = 0; p < planes; p++) out[p] = reduce(v, p * size, size, ctx);
      return [fromNumbers(x.dtype, [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)], out)];
    },
  };
}

const GLOBAL_POOLS: OpSchema[] = [
  globalPool('GlobalAveragePool', (v, from, count) => {
    let s = 0;
    for (let i = from; i < from + count; i++) s += v[i];
    return s / count;
  }),
  globalPool('GlobalMaxPool', (v, from, count) => {
    let m = -Infinity;
    for (let i = from; i < from + count; i++) m = Math.max(m, v[i]);
    return m;
  }),
  globalPool('GlobalLpPool', (v, from, count, ctx) => {
    const p = ctx.node.float('p', 2);
    let s = 0;
    for (let i = from; i < from + count; i++) s += Math.abs(v[i]) ** p;
    return s ** (1 / p);
  }),
];

// ---------------------------------------------------------------- MaxUnpool

/** Default MaxUnpool output length of axis i: the MaxPool input length that pooled to `size`. */
function unpoolLength(w: Window, i: number, size: number): number {
  const n = w.kernel.length;
  return (size - 1) * w.strides[i] + w.kernel[i] - w.pads[i] - w.pads[i + n];
}

// Inputs: X (pooled values), I (MaxPool indices into the output), optional output_shape.
const maxUnpool: OpSchema = {
  op: 'MaxUnpool',
  attrs: { kernel_shape: 'ints', pads: 'ints', strides: 'ints' },
  infer(ctx) {
    const x = spatialShape(ctx, 0);
    const dtype = ctx.dtype(0);
    if (ctx.hasInput(2)) {
      const s = ctx.symbolic(2);
      const len = ctx.shape(2)?.[0];
      return ctx.output(0, dtype, s ?? unknownDims(ctx, len));
    }
    if (!x) return ctx.output(0, dtype, undefined);
    const w = windowOf(ctx, poolKernelShape(ctx));
    const n = w.kernel.length;
    const spatial = x.slice(2).map((d, i): Dim => {
      if (typeof d === 'number') return unpoolLength(w, i, d);
      return d !== null && w.strides[i] === 1 && w.kernel[i] - 1 === w.pads[i] + w.pads[i + n] ? d : null;
    });
    ctx.output(0, dtype, [x[0], x[1], ...spatial]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const idx = numbers(ctx.input(1));
    const shapeT = ctx.optional(2);
    const w = windowOf(ctx, poolKernelShape(ctx));
    // Indices address the default-shaped output; an explicit output_shape pads or crops it at the end.
    const natural = [x.dims[0], x.dims[1], ...x.dims.slice(2).map((d, i) => unpoolLength(w, i, d))];
    const scattered = new Float64Array(shapeSize(natural));
    const v = numbers(x);
    for (let i = 0; i < v.length; i++) {
      const j = idx[i];
      if (j < 0 || j >= scattered.length) ctx.fail(`index ${j} is outside the output [${natural}]`);
      scattered[j] = v[i];
    }
    if (!shapeT) return [fromNumbers(x.dtype, natural, scattered)];
    const dims = Array.from(numbers(shapeT));
    if (dims.length !== natural.length) ctx.fail(`output_shape [${dims}] has the wrong rank`);
    return [fromNumbers(x.dtype, dims, placeAtOrigin(scattered, natural, dims))];
  },
};

/** Copies a row-major block of shape `from` into a zero tensor of shape `to`, aligned at index 0 of every axis. */
function placeAtOrigin(values: ArrayLike<number>, from: readonly number[], to: readonly number[]): Float64Array {
  const out = new Float64Array(shapeSize(to));
  const toStrides = strides(to);
  const coords = new Array<number>(from.length);
  for (let i = 0; i < values.length; i++) {
    let rest = i;
    let flat = 0;
    let inside = true;
    for (let a = from.length - 1; a >= 0; a--) {
      coords[a] = rest % from[a];
      rest = Math.floor(rest / from[a]);
      if (coords[a] >= to[a]) inside = false;
      flat += coords[a] * toStrides[a];
    }
    if (inside) out[flat] = values[i];
  }
  return out;
}

// ---------------------------------------------------------------- normalization helpers

/**
 * Groups elements for a reduction: `slots[i]` is the index of element i's group once the `axes`
 * are reduced away (keepdims order), so mean/variance per group is one pass each.
 */
function reductionSlots(dims: readonly number[], axes: readonly number[]): { slots: Int32Array | Float64Array; count: number } {
  const kept = dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const keptStrides = strides(kept).map((s, i) => (axes.includes(i) ? 0 : s));
  return { slots: stridedIndices(dims, keptStrides), count: shapeSize(kept) };
}

/** Mean and population variance of each slot's elements. */
function moments(v: ArrayLike<number>, slots: ArrayLike<number>, count: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(count);
  const variance = new Float64Array(count);
  const size = new Float64Array(count);
  for (let i = 0; i < slots.length; i++) {
    mean[slots[i]] += v[i];
    size[slots[i]]++;
  }
  for (let s = 0; s < count; s++) mean[s] /= size[s];
  for (let i = 0; i < slots.length; i++) variance[slots[i]] += (v[i] - mean[slots[i]]) ** 2;
  for (let s = 0; s < count; s++) variance[s] /= size[s];
  return { mean, variance };
}

/** Axis 1's index of each element of an [N, C, …] tensor. */
function channelOf(dims: readonly number[], i: number): number {
  const inner = shapeSize(dims.slice(2));
  return Math.floor(i / inner) % dims[1];
}

// ---------------------------------------------------------------- BatchNormalization

/** Whether a BatchNormalization node computes batch statistics rather than using the running ones. */
function batchNormTraining(ctx: Ctx): boolean {
  const extraOutputs = ctx.node.outputs.slice(1).some((v) => v);
  if (ctx.opset >= 14) return ctx.node.int('training_mode', 0) === 1;
  // Before 14 the mode is implied by the outputs: the statistics outputs exist only when training.
  if (ctx.opset < 7) return ctx.node.int('is_test', 0) === 0 && extraOutputs;
  return extraOutputs;
}

// Inputs: X, scale, B, input_mean, input_var. Outputs: Y, then running mean/var (and saved mean/var before 14).
const batchNormalization: OpSchema = {
  op: 'BatchNormalization',
  attrs: { epsilon: 'float', momentum: 'float', training_mode: 'int', spatial: 'int', is_test: 'int', consumed_inputs: 'ints' },
  infer(ctx) {
    const x = ctx.shape(0);
    if (x && x.length < 2) ctx.fail(`input has rank ${x.length}; expected [N, C, ...]`);
    ctx.output(0, ctx.dtype(0), x);
    const c = x?.[1] ?? ctx.shape(1)?.[0] ?? null;
    const statsDtype = ctx.opset >= 14 ? (ctx.dtype(3) ?? ctx.dtype(0)) : ctx.dtype(0);
    for (let i = 1; i < ctx.numOutputs; i++) if (ctx.hasOutput(i)) ctx.output(i, statsDtype, ctx.shape(i % 2 === 1 ? 3 : 4) ?? [c]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const [scale, bias, runMean, runVar] = [1, 2, 3, 4].map((i) => numbers(ctx.input(i)));
    const eps = ctx.node.float('epsilon', 1e-5);
    const v = numbers(x);
    const channels = x.dims[1];
    // Opsets 7–8 with spatial=0 give one parameter per activation of a sample, not per channel.
    const perActivation = scale.length !== channels;
    const sample = shapeSize(x.dims.slice(1));
    const param = (i: number): number => (perActivation ? i % sample : channelOf(x.dims, i));
    const training = batchNormTraining(ctx);
    let mean: ArrayLike<number> = runMean;
    let variance: ArrayLike<number> = runVar;
    if (training) {
      const { slots, count } = perActivation
        ? reductionSlots(x.dims, [0])
        : reductionSlots(x.dims, [0, ...x.dims.slice(2).map((_, i) => i + 2)]);
      ({ mean, variance } = moments(v, slots, count));
    }
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const p = param(i);
      y[i] = (scale[p] * (v[i] - mean[p])) / Math.sqrt(variance[p] + eps) + bias[p];
    }
    const outs = [fromNumbers(x.dtype, x.dims, y)];
    if (!training) return outs;
    const momentum = ctx.node.float('momentum', 0.9);
    const statsDtype = ctx.opset >= 14 ? ctx.input(3).dtype : x.dtype;
    const statsDims = ctx.input(3).dims;
    const blend = (run: ArrayLike<number>, cur: ArrayLike<number>) => Array.from(run, (r, i) => r * momentum + cur[i] * (1 - momentum));
    outs.push(fromNumbers(statsDtype, statsDims, blend(runMean, mean)), fromNumbers(statsDtype, statsDims, blend(runVar, variance)));
    if (ctx.opset < 14) outs.push(fromNumbers(statsDtype, statsDims, mean), fromNumbers(statsDtype, statsDims, variance));
    return outs;
  },
};

// ---------------------------------------------------------------- Instance/Layer/Group normalization

const instanceNormalization: OpSchema = {
  op: 'InstanceNormalization',
  attrs: { epsilon: 'float' },
  infer: sameAsInput,
  kernel(ctx) {
    const x = ctx.input(0);
    const scale = numbers(ctx.input(1));
    const bias = numbers(ctx.input(2));
    const eps = ctx.node.float('epsilon', 1e-5);
    const v = numbers(x);
    const { slots, count } = reductionSlots(
      x.dims,
      x.dims.slice(2).map((_, i) => i + 2),
    );
    const { mean, variance } = moments(v, slots, count);
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const c = channelOf(x.dims, i);
      y[i] = (scale[c] * (v[i] - mean[slots[i]])) / Math.sqrt(variance[slots[i]] + eps) + bias[c];
    }
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

/** The dtype LayerNormalization keeps its statistics in (stash_type, float by default). */
function stashType(ctx: Ctx): DType {
  const code = ctx.node.int('stash_type', 1);
  return dtypeFromCode(code) ?? ctx.fail(`unknown stash_type ${code}`);
}

// Inputs: X, Scale, B. Outputs: Y, Mean, InvStdDev (statistics shaped [X dims before axis, 1, …]).
const layerNormalization: OpSchema = {
  op: 'LayerNormalization',
  attrs: { axis: 'int', epsilon: 'float', stash_type: 'int' },
  infer(ctx) {
    const x = ctx.shape(0);
    ctx.output(0, ctx.dtype(0), x);
    if (!ctx.hasOutput(1) && !ctx.hasOutput(2)) return;
    let stats: Shape | undefined;
    if (x) {
      const axis = axisOf(ctx, ctx.node.int('axis', -1), x.length);
      stats = x.map((d, i) => (i < axis ? d : 1));
    }
    const dtype = stashType(ctx);
    ctx.output(1, dtype, stats);
    ctx.output(2, dtype, stats);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axis = axisOf(ctx, ctx.node.int('axis', -1), x.rank);
    const eps = ctx.node.float('epsilon', 1e-5);
    const scaleT = ctx.input(1);
    const biasT = ctx.optional(2);
    const normDims = x.dims.slice(axis);
    const inner = shapeSize(normDims);
    // Scale and bias broadcast (unidirectionally) to the normalized trailing dims.
    const scaleIdx = broadcastIndices(scaleT.dims, normDims);
    const biasIdx = biasT ? broadcastIndices(biasT.dims, normDims) : undefined;
    const scale = numbers(scaleT);
    const bias = biasT ? numbers(biasT) : undefined;
    const v = numbers(x);
    const rows = v.length / Math.max(inner, 1);
    const y = new Float64Array(v.length);
    const mean = new Float64Array(rows);
    const invStd = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < inner; j++) s += v[r * inner + j];
      const m = s / inner;
      let q = 0;
      for (let j = 0; j < inner; j++) q += (v[r * inner + j] - m) ** 2;
      const inv = 1 / Math.sqrt(q / inner + eps);
      mean[r] = m;
      invStd[r] = inv;
      for (let j = 0; j < inner; j++) {
        const b = bias && biasIdx ? bias[biasIdx[j]] : 0;
        y[r * inner + j] = (v[r * inner + j] - m) * inv * scale[scaleIdx[j]] + b;
      }
    }
    const statsDims = x.dims.map((d, i) => (i < axis ? d : 1));
    const dtype = stashType(ctx);
    return [fromNumbers(x.dtype, x.dims, y), fromNumbers(dtype, statsDims, mean), fromNumbers(dtype, statsDims, invStd)];
  },
};

// Inputs: X [N, C, …], scale, bias. Statistics per (sample, group of C/num_groups channels).
const groupNormalization: OpSchema = {
  op: 'GroupNormalization',
  attrs: { epsilon: 'float', num_groups: 'int', stash_type: 'int' },
  infer(ctx) {
    const x = ctx.shape(0);
    const groups = ctx.node.int('num_groups') ?? ctx.fail('num_groups is required');
    if (groups < 1) ctx.fail(`num_groups ${groups} must be positive`);
    if (x && x.length < 2) ctx.fail(`input has rank ${x.length}; expected [N, C, ...]`);
    if (x && typeof x[1] === 'number' && x[1] % groups !== 0) ctx.fail(`${x[1]} channels do not split into ${groups} groups`);
    sameAsInput(ctx);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const groups = ctx.node.int('num_groups', 1);
    const eps = ctx.node.float('epsilon', 1e-5);
    const [batch, channels] = x.dims;
    if (channels % groups !== 0) ctx.fail(`${channels} channels do not split into ${groups} groups`);
    const scale = numbers(ctx.input(1));
    const bias = numbers(ctx.input(2));
    // Opset 18 gives scale/bias per group, 21 per channel; the length tells them apart (equal when groups = channels).
    const perChannel = scale.length === channels;
    const perGroup = channels / groups;
    const inner = shapeSize(x.dims.slice(2));
    const groupSize = perGroup * inner;
    const v = numbers(x);
    const y = new Float64Array(v.length);
    for (let g = 0; g < batch * groups; g++) {
      const from = g * groupSize;
      let s = 0;
      for (let i = from; i < from + groupSize; i++) s += v[i];
      const m = s / groupSize;
      let q = 0;
      for (let i = from; i < from + groupSize; i++) q += (v[i] - m) ** 2;
      const inv = 1 / Math.sqrt(q / groupSize + eps);
      for (let i = from; i < from + groupSize; i++) {
        const c = Math.floor(i / inner) % channels;
        const p = perChannel ? c : Math.floor(c / perGroup);
        y[i] = (v[i] - m) * inv * scale[p] + bias[p];
      }
    }
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

// ---------------------------------------------------------------- LRN, MeanVarianceNormalization

const lrn: OpSchema = {
  op: 'LRN',
  attrs: { alpha: 'float', beta: 'float', bias: 'float', size: 'int' },
  infer: sameAsInput,
  kernel(ctx) {
    const x = ctx.input(0);
    const size = ctx.node.int('size') ?? ctx.fail('LRN size is required');
    const alpha = ctx.node.float('alpha', 1e-4);
    const beta = ctx.node.float('beta', 0.75);
    const bias = ctx.node.float('bias', 1);
    const channels = x.dims[1];
    const inner = shapeSize(x.dims.slice(2));
    // The window over channels runs from c − ⌊(size−1)/2⌋ to c + ⌈(size−1)/2⌉.
    const before = Math.floor((size - 1) / 2);
    const after = Math.ceil((size - 1) / 2);
    const v = numbers(x);
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const c = Math.floor(i / inner) % channels;
      let sq = 0;
      for (let cc = Math.max(0, c - before); cc <= Math.min(channels - 1, c + after); cc++) sq += v[i + (cc - c) * inner] ** 2;
      y[i] = v[i] / (bias + (alpha / size) * sq) ** beta;
    }
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

const meanVarianceNormalization: OpSchema = {
  op: 'MeanVarianceNormalization',
  attrs: { axes: 'ints' },
  infer: sameAsInput,
  kernel(ctx) {
    const x = ctx.input(0);
    const axes = listAttr(ctx, 'axes', [0, 2, 3]).map((a) => axisOf(ctx, a, x.rank));
    const v = numbers(x);
    const { slots, count } = reductionSlots(x.dims, axes);
    const { mean, variance } = moments(v, slots, count);
    // The function body divides by sqrt(E[x²] − E[x]²) + 1e-9.
    const y = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) y[i] = (v[i] - mean[slots[i]]) / (Math.sqrt(variance[slots[i]]) + 1e-9);
    return [fromNumbers(x.dtype, x.dims, y)];
  },
};

// ---------------------------------------------------------------- Dropout

/**
 * MT19937 seeded like numpy's legacy `np.random.seed(int)`, whose uniform draws the ONNX
 * reference uses for Dropout's mask: with the same seed attribute the masks agree.
 */
class MersenneTwister {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      this.mt[i] = Math.imul(1812433253, prev) + i;
    }
  }

  private next32(): number {
    if (this.index >= 624) {
      for (let i = 0; i < 624; i++) {
        const y = (this.mt[i] & 0x80000000) | (this.mt[(i + 1) % 624] & 0x7fffffff);
        this.mt[i] = this.mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits (numpy's random_sample). */
  uniform(): number {
    const a = this.next32() >>> 5;
    const b = this.next32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

function dropoutRatio(ctx: KernelContext): number {
  if (ctx.opset < 12) return ctx.node.float('ratio', 0.5);
  const r = ctx.optional(1);
  return r ? numbers(r)[0] : 0.5;
}

// Outputs: output, mask (bool from opset 10; the input's type before).
const dropout: OpSchema = {
  op: 'Dropout',
  attrs: { ratio: 'float', seed: 'int', is_test: 'int', consumed_inputs: 'ints' },
  infer(ctx) {
    ctx.output(0, ctx.dtype(0), ctx.shape(0));
    if (ctx.hasOutput(1)) ctx.output(1, ctx.opset >= 10 ? 'bool' : ctx.dtype(0), ctx.shape(0));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const maskDtype: DType = ctx.opset >= 10 ? 'bool' : x.dtype;
    // Only opset 12's training_mode input asks for random dropping; older graphs are run for
    // inference, where Dropout is the identity (as runtimes do with opset ≤ 6's is_test too).
    const modeT = ctx.opset >= 12 ? ctx.optional(2) : undefined;
    const training = modeT ? numbers(modeT)[0] !== 0 : false;
    const ratio = dropoutRatio(ctx);
    if (!training || ratio === 0) return [x, fromNumbers(maskDtype, x.dims, new Uint8Array(x.size).fill(1))];
    if (ratio < 0 || ratio > 1) ctx.fail(`ratio ${ratio} is outside [0, 1]`);
    const seed = ctx.node.int('seed') ?? Math.floor(Math.random() * 2 ** 32);
    const rng = new MersenneTwister(seed);
    const v = numbers(x);
    const y = new Float64Array(v.length);
    const mask = new Uint8Array(v.length);
    const scale = ratio < 1 ? 1 / (1 - ratio) : 0;
    for (let i = 0; i < v.length; i++) {
      mask[i] = rng.uniform() >= ratio ? 1 : 0;
      y[i] = mask[i] ? v[i] * scale : 0;
    }
    return [fromNumbers(x.dtype, x.dims, y), fromNumbers(maskDtype, x.dims, mask)];
  },
};

// ---------------------------------------------------------------- Softmax, LogSoftmax, Hardmax

/**
 * The [outer, length, inner] view a softmax-family op normalizes over. Before opset 13 the input
 * is coerced to 2-D at `axis` (default 1) and each row of the flattened tail is normalized; from
 * 13 only `axis` (default −1) is.
 */
function softmaxView(ctx: Ctx, dims: readonly number[]): [number, number, number] {
  if (ctx.opset < 13) {
    const rank = dims.length;
    const raw = ctx.node.int('axis', 1);
    const a = raw < 0 ? raw + rank : raw;
    if (a < 0 || a > rank) return ctx.fail(`axis ${raw} is out of range for rank ${rank}`);
    return [shapeSize(dims.slice(0, a)), shapeSize(dims.slice(a)), 1];
  }
  const a = axisOf(ctx, ctx.node.int('axis', -1), dims.length);
  return [shapeSize(dims.slice(0, a)), dims[a], shapeSize(dims.slice(a + 1))];
}

/** A softmax-family op: `fn` rewrites one normalized lane (`get(j)` → `set(j, …)`). */
function softmaxLike(op: string, fn: (get: (j: number) => number, n: number, set: (j: number, v: number) => void) => void): OpSchema {
  return {
    op,
    attrs: { axis: 'int' },
    infer(ctx) {
      const r = ctx.rank(0);
      if (r !== undefined && ctx.opset >= 13) axisOf(ctx, ctx.node.int('axis', -1), r);
      sameAsInput(ctx);
    },
    kernel(ctx) {
      const x = ctx.input(0);
      const [outer, n, inner] = softmaxView(ctx, x.dims);
      const v = numbers(x);
      const y = new Float64Array(v.length);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * n * inner + i;
          fn(
            (j) => v[base + j * inner],
            n,
            (j, val) => {
              y[base + j * inner] = val;
            },
          );
        }
      }
      return [fromNumbers(x.dtype, x.dims, y)];
    },
  };
}

/** Max of a lane, subtracted before exponentiating so large inputs do not overflow. */
function laneMax(get: (j: number) => number, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, get(j));
  return m;
}

const SOFTMAX_OPS: OpSchema[] = [
  softmaxLike('Softmax', (get, n, set) => {
    const m = laneMax(get, n);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(get(j) - m);
    for (let j = 0; j < n; j++) set(j, Math.exp(get(j) - m) / s);
  }),
  softmaxLike('LogSoftmax', (get, n, set) => {
    const m = laneMax(get, n);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(get(j) - m);
    const log = Math.log(s);
    for (let j = 0; j < n; j++) set(j, get(j) - m - log);
  }),
  softmaxLike('Hardmax', (get, n, set) => {
    // One-hot at the first maximum.
    let best = 0;
    for (let j = 1; j < n; j++) if (get(j) > get(best)) best = j;
    for (let j = 0; j < n; j++) set(j, j === best ? 1 : 0);
  }),
];

export const NN_OPS: OpSchema[] = [
  conv,
  convInteger,
  qlinearConv,
  convTranspose,
  deformConv,
  col2im,
  averagePool,
  maxPool,
  lpPool,
  ...GLOBAL_POOLS,
  maxUnpool,
  batchNormalization,
  instanceNormalization,
  layerNormalization,
  groupNormalization,
  lrn,
  meanVarianceNormalization,
  dropout,
  ...SOFTMAX_OPS,
];
