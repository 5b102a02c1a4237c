/**
 * Convolutions: Conv, ConvInteger, QLinearConv, ConvTranspose, DeformConv and Col2Im. All of them
 * read (or, transposed, scatter) their windows through the shared geometry of window.ts; the
 * direct convolution runs in float64, with the quantized forms adding zero points and requantizing.
 * Spec: https://onnx.ai/onnx/operators/
 */

import type { AttrInput } from '../ir/attributes.js';
import { dimDiv, dimMul, dimProduct } from '../ir/dims.js';
import { type DType, valueRange } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { shapeSize, type Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import { channelAxes, fromOutput0, spatialDims, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { fromNumbers, listAttr, numbers, roundHalfEven } from './util.js';
import { extent, isSame, outputDim, padsAt, resolveWindow, spatialShape, type Window, windowOf, windowTaps } from './window.js';

type Ctx = InferContext | KernelContext | GradContext;

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

// ---------------------------------------------------------------- gradients

/** Attributes that differ from their defaults, so the emitted nodes stay short. */
function geometryAttrs(strides: number[], dilations: number[], group: number): Record<string, AttrInput> {
  const attrs: Record<string, AttrInput> = {};
  if (strides.some((x) => x !== 1)) attrs.strides = strides;
  if (dilations.some((x) => x !== 1)) attrs.dilations = dilations;
  if (group !== 1) attrs.group = group;
  return attrs;
}

/** `v` cut to `sizes` along its spatial axes when it is longer there. */
function cropSpatial(c: GradContext, v: Value, have: number[], sizes: number[]): Value {
  if (have.every((h, i) => h === sizes[i])) return v;
  const axes = sizes.map((_, i) => i + 2);
  return c.op('Slice', [v, c.ints(sizes.map(() => 0)), c.ints(sizes), c.ints(axes)]);
}

/**
 * The transposed convolution of `dy` (windows of `outDims` positions) by `w` back onto an input
 * of `inDims`: the input gradient of a convolution (and, with a ones kernel, of AveragePool).
 * The end pad is chosen so the result has exactly `inDims` (rows no window read get 0); when the
 * last window stops short of the input's end, output_padding adds the missing rows instead.
 */
export function transposedWindowGrad(
  c: GradContext,
  dy: Value,
  w: Value,
  win: Window,
  begin: number[],
  inDims: number[],
  outDims: number[],
  group: number,
): Value {
  const end: number[] = [];
  const outPad: number[] = [];
  inDims.forEach((size, i) => {
    const full = win.strides[i] * (outDims[i] - 1) + extent(win, i);
    const e = full - begin[i] - size;
    end.push(Math.max(0, e));
    outPad.push(Math.max(0, -e));
  });
  const attrs = geometryAttrs(win.strides, win.dilations, group);
  if (begin.some((p) => p !== 0) || end.some((p) => p !== 0)) attrs.pads = [...begin, ...end];
  if (outPad.some((p) => p !== 0)) attrs.output_padding = outPad;
  return c.op('ConvTranspose', [dy, w], attrs);
}

/**
 * The weight gradient of a convolution from `input` [N, C, inDims…] (C = `channels`) to `dOut` [N, M, outDims…]:
 *   dW[m, c, k] = Σ_n Σ_o dOut[n, m, o]·input[n, c, o·stride + k·dilation − begin].
 * That is itself a convolution, of the batch-transposed input [C, N, …] by the batch-transposed
 * dOut [M, N, …] with strides and dilations swapped, giving [C, M, kernel…], transposed back to
 * [M, C, kernel…]. With groups, the group index moves into the channel axis of the transposed
 * input ([C/G, G·N, …]) and the convolution runs grouped, so no cross-group pair is computed.
 */
export function convWeightGrad(
  c: GradContext,
  input: Value,
  dOut: Value,
  win: Window,
  begin: number[],
  inDims: number[],
  outDims: number[],
  group: number,
  channels: Dim,
): Value {
  const swap = [1, 0, ...inDims.map((_, i) => i + 2)];
  let xt: Value;
  if (group === 1) {
    xt = c.op('Transpose', [input], { perm: swap });
  } else {
    if (typeof channels !== 'number') return c.fail('the weight gradient of a grouped convolution needs the channel counts known');
    const perGroup = channels / group;
    const split = c.op('Reshape', [input, c.ints([0, group, perGroup, ...inDims])]);
    const moved = c.op('Transpose', [split], { perm: [2, 1, 0, ...inDims.map((_, i) => i + 3)] });
    xt = c.op('Reshape', [moved, c.ints([perGroup, -1, ...inDims])]);
  }
  const dyt = c.op('Transpose', [dOut], { perm: swap });
  // End pads that make exactly `kernel` positions where they can (never negative).
  const kernel = win.kernel;
  const end = inDims.map((size, i) =>
    Math.max(0, (kernel[i] - 1) * win.dilations[i] + (outDims[i] - 1) * win.strides[i] + 1 - size - begin[i]),
  );
  const attrs = geometryAttrs(win.dilations, win.strides, group);
  if (begin.some((p) => p !== 0) || end.some((p) => p !== 0)) attrs.pads = [...begin, ...end];
  const z = c.op('Conv', [xt, dyt], attrs);
  const have = inDims.map(
    (size, i) => Math.floor((size + begin[i] + end[i] - ((outDims[i] - 1) * win.strides[i] + 1)) / win.dilations[i]) + 1,
  );
  return c.op('Transpose', [cropSpatial(c, z, have, kernel)], { perm: swap });
}

/** dB of a convolution-like op: dY summed over all axes but the channels. */
function biasGrad(c: GradContext, dy: Value): Value {
  return c.reduce('ReduceSum', dy, channelAxes(c.shape(c.output(0)).length), false);
}

const convGrad: GradRule = fromOutput0((c, dy) => {
  const x = c.input(0);
  const w = c.input(1);
  const why = 'the gradient of Conv';
  const inDims = spatialDims(c, x, why);
  const outDims = spatialDims(c, c.output(0), why);
  const kernel = c.staticShape(w, why).slice(2);
  const win = windowOf(c, kernel);
  const begin = inDims.map((size, i) => padsAt(win, i, size)[0]);
  const group = c.node.int('group', 1);
  if (c.needs(2)) c.setGrad(2, biasGrad(c, dy));
  if (c.needs(0)) c.setGrad(0, transposedWindowGrad(c, dy, w, win, begin, inDims, outDims, group));
  if (c.needs(1)) c.setGrad(1, convWeightGrad(c, x, dy, win, begin, inDims, outDims, group, c.shape(x)[1]));
});

/**
 * ConvTranspose: the input gradient is the plain convolution of dY by W (same strides, dilations,
 * groups, and the pads the forward pass cut off); the weight gradient is a convolution's weight
 * gradient with the roles of input and output swapped (dY is read through the window, X is the
 * output side).
 */
const convTransposeGrad: GradRule = fromOutput0((c, dy) => {
  const x = c.input(0);
  const w = c.input(1);
  const why = 'the gradient of ConvTranspose';
  const inDims = spatialDims(c, x, why);
  const outDims = spatialDims(c, c.output(0), why);
  const kernel = c.staticShape(w, why).slice(2);
  const win = windowOf(c, kernel);
  const n = inDims.length;
  const outPad = outputPadding(c, n);
  const target = transposeOutputShape(c, n);
  const begin = inDims.map((size, i) => transposeAxis(win, i, size, outPad[i], target?.[i])[0]);
  if (begin.some((p) => p < 0)) c.fail('an output_shape longer than the full transposed convolution is not supported');
  const group = c.node.int('group', 1);
  if (c.needs(2)) c.setGrad(2, biasGrad(c, dy));
  if (c.needs(0)) {
    // The convolution of dY back to X's length: end pads that give exactly inDims positions.
    const end = inDims.map((size, i) => win.strides[i] * (size - 1) + extent(win, i) - outDims[i] - begin[i]);
    const attrs = geometryAttrs(win.strides, win.dilations, group);
    const padEnd = end.map((e) => Math.max(0, e));
    if (begin.some((p) => p !== 0) || padEnd.some((p) => p !== 0)) attrs.pads = [...begin, ...padEnd];
    const z = c.op('Conv', [dy, w], attrs);
    const have = inDims.map((_, i) => Math.floor((outDims[i] + begin[i] + padEnd[i] - extent(win, i)) / win.strides[i]) + 1);
    c.setGrad(0, cropSpatial(c, z, have, inDims));
  }
  if (c.needs(1)) c.setGrad(1, convWeightGrad(c, dy, x, win, begin, outDims, inDims, group, c.shape(c.output(0))[1]));
});

export const CONV_OPS: OpSchema[] = withGradients([conv, convInteger, qlinearConv, convTranspose, deformConv, col2im], {
  Conv: convGrad,
  ConvTranspose: convTransposeGrad,
});
