/**
 * Resampling and detection operators: Resize, Upsample, GridSample, AffineGrid, RoiAlign,
 * NonMaxSuppression. Spec: https://onnx.ai/onnx/operators/
 *
 * Resize interpolates each axis separately: for every output index along an axis it picks a few
 * input indices with weights (one for nearest, two for linear, four for cubic, more when
 * antialiasing), and an output element is the weighted sum over the product of its axes' picks.
 * That is the ONNX reference's nested 1-D interpolation written as one sum.
 */
import { shapeSize, type Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, fromNumbers, numbers, strides, takeElements } from './util.js';

type Ctx = InferContext | KernelContext;

// ---------------------------------------------------------------- output sizes

/** Where Resize/Upsample read their inputs at this opset. */
interface ResizeInputs {
  roi?: number;
  scales?: number;
  sizes?: number;
}

function resizeInputs(ctx: Ctx): ResizeInputs {
  if (ctx.node.opType === 'Upsample') return ctx.opset < 9 ? {} : { scales: 1 };
  if (ctx.opset < 11) return { scales: 1 };
  return { roi: 1, scales: 2, sizes: 3 };
}

/** The axes that scales/sizes/roi address (the `axes` attribute from opset 18, else all). */
function resizeAxes(ctx: Ctx, rank: number): number[] {
  const axes = ctx.opset >= 18 && ctx.node.opType === 'Resize' ? ctx.node.ints('axes') : undefined;
  if (!axes || axes.length === 0) return Array.from({ length: rank }, (_, i) => i);
  const norm = axes.map((a) => axisOf(ctx, a, rank));
  if (new Set(norm).size !== norm.length) ctx.fail(`axes [${axes}] repeat`);
  return norm;
}

/** Output dims and the per-axis scale the coordinate transforms use (NaN where unknown). */
interface ResizeTarget {
  out: Shape;
  scale: number[];
}

/**
 * Output dims from `sizes` (with keep_aspect_ratio_policy from opset 18) or from `scales`
 * (floor(in × scale), in float as runtimes compute it). A symbolic dim stays only when scaled by 1.
 */
function resizeTarget(
  ctx: Ctx,
  inDims: readonly Dim[],
  axes: readonly number[],
  scales: readonly number[] | undefined,
  sizes: readonly Dim[] | undefined,
): ResizeTarget {
  const out: Shape = [...inDims];
  const scale = inDims.map(() => 1);
  if (sizes) {
    if (sizes.length !== axes.length) ctx.fail(`sizes has ${sizes.length} entries for ${axes.length} axes`);
    const policy = ctx.opset >= 18 ? ctx.node.str('keep_aspect_ratio_policy', 'stretch') : 'stretch';
    const ratios = axes.map((a, i) => {
      const s = sizes[i];
      const d = inDims[a];
      return typeof s === 'number' && typeof d === 'number' ? s / d : Number.NaN;
    });
    if (policy === 'stretch') {
      axes.forEach((a, i) => {
        out[a] = sizes[i];
        scale[a] = ratios[i];
      });
      return { out, scale };
    }
    if (policy !== 'not_larger' && policy !== 'not_smaller') return ctx.fail(`unknown keep_aspect_ratio_policy ${policy}`);
    // One scale for all axes, the largest that fits (not_larger) or the smallest that covers (not_smaller).
    const s = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    for (const a of axes) {
      const d = inDims[a];
      scale[a] = s;
      out[a] = typeof d === 'number' && !Number.isNaN(s) ? Math.floor(s * d + 0.5) : null;
    }
    return { out, scale };
  }
  if (scales) {
    if (scales.length !== axes.length) ctx.fail(`scales has ${scales.length} entries for ${axes.length} axes`);
    axes.forEach((a, i) => {
      const s = scales[i];
      if (!(s > 0)) ctx.fail(`scale ${s} must be positive`);
      const d = inDims[a];
      scale[a] = s;
      out[a] = typeof d === 'number' ? Math.floor(Math.fround(d * s)) : s === 1 ? d : null;
    });
  }
  return { out, scale };
}

/** True when an optional input is absent or an empty tensor (opset 11 writes unused scales as []). */
function emptyInput(ctx: InferContext, i: number): boolean {
  if (!ctx.hasInput(i)) return true;
  const s = ctx.shape(i);
  return s?.length === 1 && s[0] === 0;
}

function resizeInfer(ctx: InferContext) {
  const x = ctx.shape(0);
  const dtype = ctx.dtype(0);
  if (!x) return ctx.output(0, dtype, undefined);
  const where = resizeInputs(ctx);
  const axes = resizeAxes(ctx, x.length);
  const unknown = () =>
    ctx.output(
      0,
      dtype,
      x.map((d, i) => (axes.includes(i) ? null : d)),
    );
  if (where.sizes !== undefined && !emptyInput(ctx, where.sizes)) {
    const scalesLength = where.scales !== undefined && ctx.hasInput(where.scales) ? ctx.shape(where.scales)?.[0] : 0;
    if (typeof scalesLength === 'number' && scalesLength > 0) ctx.fail('only one of scales and sizes may be given');
    const sizes = ctx.symbolic(where.sizes);
    if (!sizes) return unknown();
    return ctx.output(0, dtype, resizeTarget(ctx, x, axes, undefined, sizes).out);
  }
  let scales: number[] | undefined;
  if (where.scales === undefined) scales = ctx.node.floats('scales') ?? ctx.fail('scales is required');
  else if (!emptyInput(ctx, where.scales)) {
    const c = ctx.constant(where.scales);
    if (!c) return unknown();
    scales = c.toNumbers();
  }
  if (!scales) return ctx.fail('one of scales and sizes is required');
  ctx.output(0, dtype, resizeTarget(ctx, x, axes, scales, undefined).out);
}

// ---------------------------------------------------------------- per-axis interpolation weights

/** One output index's picks along an axis: input indices and their weights; null means extrapolate. */
type Picks = { idx: number[]; w: number[] } | null;

interface ResizeMode {
  mode: 'nearest' | 'linear' | 'cubic';
  transform: string;
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  antialias: boolean;
  /** Before opset 11 (and in Upsample): asymmetric, with the "simple" nearest rounding. */
  legacy: boolean;
}

const TRANSFORMS = [
  'half_pixel',
  'half_pixel_symmetric',
  'pytorch_half_pixel',
  'align_corners',
  'asymmetric',
  'tf_half_pixel_for_nn',
  'tf_crop_and_resize',
];
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

function resizeMode(ctx: KernelContext): ResizeMode {
  const raw = ctx.node.str('mode', 'nearest');
  // Upsample-7 and early exporters say "bilinear"/"trilinear" for linear.
  const mode = raw === 'bilinear' || raw === 'trilinear' ? 'linear' : raw;
  if (mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic') return ctx.fail(`unknown mode ${raw}`);
  const legacy = ctx.node.opType === 'Upsample' || ctx.opset < 11;
  const transform = legacy ? 'asymmetric' : ctx.node.str('coordinate_transformation_mode', 'half_pixel');
  if (!TRANSFORMS.includes(transform)) ctx.fail(`unknown coordinate_transformation_mode ${transform}`);
  const nearest = ctx.node.str('nearest_mode', 'round_prefer_floor');
  if (!NEAREST_MODES.includes(nearest)) ctx.fail(`unknown nearest_mode ${nearest}`);
  return {
    mode,
    transform,
    nearest,
    cubicA: ctx.node.float('cubic_coeff_a', -0.75),
    excludeOutside: ctx.node.int('exclude_outside', 0) === 1,
    antialias: ctx.opset >= 18 && ctx.node.int('antialias', 0) === 1,
    legacy,
  };
}

/**
 * Maps output index x to a fractional input coordinate, or null where tf_crop_and_resize falls
 * outside the input. `length` is in·scale as a real number,
 * not the rounded output length: align_corners and tf_crop_and_resize use it so (the reference's
 * choice, which the ONNX tests encode).
 */
function sourceCoordinate(m: ResizeMode, x: number, inLen: number, outLen: number, scale: number, roi: [number, number]): number | null {
  const length = scale * inLen;
  switch (m.transform) {
    case 'half_pixel':
      return (x + 0.5) / scale - 0.5;
    case 'half_pixel_symmetric': {
      // Centres the resized extent when rounding made the output shorter or longer than in·scale.
      const offset = (inLen / 2) * (1 - outLen / length);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case 'pytorch_half_pixel':
      return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      return length === 1 ? 0 : (x * (inLen - 1)) / (length - 1);
    case 'asymmetric':
      return x / scale;
    case 'tf_half_pixel_for_nn':
      return (x + 0.5) / scale;
    default: {
      // tf_crop_and_resize (resizeMode rejected unknown modes): roi picks the crop; outside it, extrapolate.
      const [start, end] = roi;
      const c = length === 1 ? ((start + end) / 2) * (inLen - 1) : start * (inLen - 1) + (x * (end - start) * (inLen - 1)) / (length - 1);
      return c < 0 || c > inLen - 1 ? null : c;
    }
  }
}

/** Keys' cubic convolution kernel with parameter A at distance t. */
function cubicKernel(t: number, a: number): number {
  const x = Math.abs(t);
  if (x <= 1) return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1;
  if (x < 2) return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a;
  return 0;
}

/**
 * Weights over input offsets start, start+1, … from the left neighbour x0 of the coordinate,
 * where `ratio` = coordinate − x0 lies in (0, 1] (an integral coordinate counts as ratio 1 of
 * the index before it, as in the reference). With antialias a downscale stretches the filter by
 * 1/scale and normalizes it.
 */
function filterWeights(m: ResizeMode, ratio: number, scale: number): { start: number; w: number[] } {
  if (m.mode === 'nearest') {
    const pickLeft =
      ratio === 1
        ? false
        : m.nearest === 'round_prefer_ceil'
          ? ratio < 0.5
          : m.nearest === 'floor'
            ? true
            : m.nearest === 'ceil'
              ? false
              : ratio <= 0.5;
    return { start: 0, w: pickLeft ? [1, 0] : [0, 1] };
  }
  const support = m.mode === 'linear' ? 1 : 2;
  const kernel = m.mode === 'linear' ? (t: number) => Math.max(0, 1 - Math.abs(t)) : (t: number) => cubicKernel(t, m.cubicA);
  const s = m.antialias ? Math.min(scale, 1) : 1;
  const start = Math.floor(-support / s) + 1;
  const w: number[] = [];
  for (let i = start; i < 2 - start; i++) w.push(kernel(s * (i - ratio)));
  if (m.antialias) {
    const sum = w.reduce((a, b) => a + b, 0);
    return { start, w: w.map((v) => v / sum) };
  }
  return { start, w };
}

/** The legacy nearest rounding: floor when upsampling, ceil when downsampling. */
function legacyNearest(coord: number, scale: number): number {
  return scale < 1 ? Math.ceil(coord) : Math.trunc(coord);
}

/** Picks for every output index of one axis. */
function axisPicks(m: ResizeMode, inLen: number, outLen: number, scale: number, roi: [number, number]): Picks[] {
  const clamp = (i: number) => Math.min(inLen - 1, Math.max(0, i));
  const picks: Picks[] = [];
  for (let x = 0; x < outLen; x++) {
    const coord = sourceCoordinate(m, x, inLen, outLen, scale, roi);
    if (coord === null) {
      picks.push(null);
      continue;
    }
    if (m.legacy && m.mode === 'nearest') {
      picks.push({ idx: [clamp(legacyNearest(coord, scale))], w: [1] });
      continue;
    }
    const x0 = Number.isInteger(coord) ? coord - 1 : Math.floor(coord);
    const { start, w } = filterWeights(m, coord - x0, scale);
    const raw = w.map((_, k) => x0 + start + k);
    if (m.excludeOutside) {
      // Taps off the input get no weight; the rest are renormalized.
      raw.forEach((i, k) => {
        if (i < 0 || i >= inLen) w[k] = 0;
      });
      const sum = w.reduce((a, b) => a + b, 0);
      for (let k = 0; k < w.length; k++) w[k] /= sum;
    }
    // Edge replication: taps off the input read its first or last element.
    picks.push({ idx: raw.map(clamp), w });
  }
  return picks;
}

/** The roi input as per-axis [start, end] pairs (only tf_crop_and_resize reads it). */
function roiPairs(ctx: KernelContext, rank: number, axes: readonly number[], where: ResizeInputs): Array<[number, number]> {
  const pairs: Array<[number, number]> = Array.from({ length: rank }, () => [0, 1]);
  const t = where.roi !== undefined ? ctx.optional(where.roi) : undefined;
  if (!t || t.size === 0) return pairs;
  const v = numbers(t);
  if (v.length !== 2 * axes.length) ctx.fail(`roi has ${v.length} entries for ${axes.length} axes`);
  axes.forEach((a, i) => {
    pairs[a] = [v[i], v[i + axes.length]];
  });
  return pairs;
}

function resizeKernel(ctx: KernelContext): Tensor[] {
  const x = ctx.input(0);
  const where = resizeInputs(ctx);
  const axes = resizeAxes(ctx, x.rank);
  const sizesT = where.sizes !== undefined ? ctx.optional(where.sizes) : undefined;
  const scalesT = where.scales !== undefined ? ctx.optional(where.scales) : undefined;
  let target: ResizeTarget;
  if (sizesT && sizesT.size > 0) target = resizeTarget(ctx, x.dims, axes, undefined, Array.from(numbers(sizesT)));
  else if (scalesT && scalesT.size > 0) target = resizeTarget(ctx, x.dims, axes, Array.from(numbers(scalesT)), undefined);
  else if (where.scales === undefined)
    target = resizeTarget(ctx, x.dims, axes, ctx.node.floats('scales') ?? ctx.fail('scales is required'), undefined);
  else return ctx.fail('one of scales and sizes is required');
  const outDims = target.out as number[];
  const m = resizeMode(ctx);
  const roi = roiPairs(ctx, x.rank, axes, where);
  const picks = x.dims.map((d, a) => axisPicks(m, d, outDims[a], target.scale[a], roi[a]));
  return [resample(x, outDims, picks, m.mode === 'nearest', ctx.node.float('extrapolation_value', 0))];
}

/**
 * Σ over the product of the axes' picks of Π weights × x. Nearest picks that never extrapolate
 * are a pure gather, done by index so every dtype (strings, int64) survives unchanged.
 */
function resample(x: Tensor, outDims: readonly number[], picks: Picks[][], nearest: boolean, extrapolation: number): Tensor {
  const r = x.rank;
  const n = shapeSize(outDims);
  const inStrides = strides(x.dims);
  const pos = new Array<number>(r).fill(0);
  const advance = (): void => {
    for (let a = r - 1; a >= 0; a--) {
      if (++pos[a] < outDims[a]) return;
      pos[a] = 0;
    }
  };
  if (nearest && picks.every((axis) => axis.every((p) => p !== null))) {
    const src = new Int32Array(n);
    for (let i = 0; i < n; i++, advance()) {
      let flat = 0;
      for (let a = 0; a < r; a++) {
        const p = picks[a][pos[a]] as { idx: number[]; w: number[] };
        flat += p.idx[p.w[0] === 1 || p.w.length === 1 ? 0 : 1] * inStrides[a];
      }
      src[i] = flat;
    }
    return takeElements(x, outDims, src);
  }
  const v = numbers(x);
  const out = new Float64Array(n);
  const here: Array<{ idx: number[]; w: number[] }> = new Array(r);
  const sum = (a: number, offset: number, weight: number): number => {
    if (a === r) return weight * v[offset];
    const p = here[a];
    let s = 0;
    for (let k = 0; k < p.idx.length; k++) if (p.w[k] !== 0) s += sum(a + 1, offset + p.idx[k] * inStrides[a], weight * p.w[k]);
    return s;
  };
  for (let i = 0; i < n; i++, advance()) {
    let outside = false;
    for (let a = 0; a < r; a++) {
      const p = picks[a][pos[a]];
      if (p === null) outside = true;
      else here[a] = p;
    }
    out[i] = outside ? extrapolation : sum(0, 0, 1);
  }
  return fromNumbers(x.dtype, outDims, out);
}

const resize: OpSchema = {
  op: 'Resize',
  attrs: {
    antialias: 'int',
    axes: 'ints',
    coordinate_transformation_mode: 'string',
    cubic_coeff_a: 'float',
    exclude_outside: 'int',
    extrapolation_value: 'float',
    keep_aspect_ratio_policy: 'string',
    mode: 'string',
    nearest_mode: 'string',
  },
  infer: resizeInfer,
  kernel: resizeKernel,
};

// Opset 7 takes scales as an attribute, 9 as input 1; always asymmetric with the legacy rounding.
const upsample: OpSchema = {
  op: 'Upsample',
  attrs: { mode: 'string', scales: 'floats' },
  infer: resizeInfer,
  kernel: resizeKernel,
};

// ---------------------------------------------------------------- GridSample

/** Reflects x into [lo, hi] by folding at the borders until it lands inside. */
function reflect(x: number, lo: number, hi: number): number {
  const range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const d = lo - x;
    const k = Math.floor(d / range);
    const r = d - k * range;
    return k % 2 === 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const d = x - hi;
    const k = Math.floor(d / range);
    const r = d - k * range;
    return k % 2 === 0 ? hi - r : lo + r;
  }
  return x;
}

/** Round half to even (C's nearbyint), which PyTorch's 2-D nearest grid sampling uses. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Round half away from zero (C's round), used by PyTorch's 3-D nearest grid sampling. */
function roundAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

// Inputs: X [N, C, D1…Dr], grid [N, O1…Or, r] of normalized (x, y, …) — the last coordinate first.
const gridSample: OpSchema = {
  op: 'GridSample',
  attrs: { align_corners: 'int', mode: 'string', padding_mode: 'string' },
  infer(ctx) {
    const x = ctx.shape(0);
    const grid = ctx.shape(1);
    if (x && x.length < 3) ctx.fail(`input has rank ${x.length}; expected [N, C, spatial...]`);
    if (!grid) return ctx.output(0, ctx.dtype(0), x ? [x[0], x[1], ...x.slice(2).map(() => null)] : undefined);
    if (x && grid.length !== x.length) ctx.fail(`grid has rank ${grid.length} but the input has rank ${x.length}`);
    const last = grid[grid.length - 1];
    if (typeof last === 'number' && last !== grid.length - 2) ctx.fail(`grid's last dim is ${last}; expected ${grid.length - 2}`);
    ctx.output(0, ctx.dtype(0), [x?.[0] ?? grid[0], x ? x[1] : null, ...grid.slice(1, -1)]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const grid = ctx.input(1);
    const raw = ctx.node.str('mode', 'bilinear');
    const mode = raw === 'bilinear' ? 'linear' : raw === 'bicubic' ? 'cubic' : raw;
    if (mode !== 'linear' && mode !== 'cubic' && mode !== 'nearest') return ctx.fail(`unknown mode ${raw}`);
    const padding = ctx.node.str('padding_mode', 'zeros');
    if (padding !== 'zeros' && padding !== 'border' && padding !== 'reflection') return ctx.fail(`unknown padding_mode ${padding}`);
    const alignCorners = ctx.node.int('align_corners', 0) === 1;
    const [batch, channels] = x.dims;
    const dims = x.dims.slice(2);
    const r = dims.length;
    const outSpatial = grid.dims.slice(1, -1);
    if (grid.dims[grid.dims.length - 1] !== r) ctx.fail(`grid's last dim is ${grid.dims[grid.dims.length - 1]}; expected ${r}`);
    const inSize = shapeSize(dims);
    const outSize = shapeSize(outSpatial);
    const inStrides = strides(dims);
    // align_corners puts −1 and 1 at the centres of the corner pixels, else at their outer edges.
    const lo = dims.map(() => (alignCorners ? 0 : -0.5));
    const hi = dims.map((d) => (alignCorners ? d - 1 : d - 0.5));
    const denormalize = (v: number, d: number) => (alignCorners ? ((v + 1) / 2) * (d - 1) : ((v + 1) * d - 1) / 2);
    /** Index along axis a as the padding mode reads it; −1 means a zero. */
    const fetchIndex = (i: number, a: number): number => {
      if (padding === 'zeros') return i >= 0 && i < dims[a] ? i : -1;
      if (padding === 'border') return Math.min(dims[a] - 1, Math.max(0, i));
      return Math.trunc(reflect(i, lo[a], hi[a]));
    };
    const xv = numbers(x);
    const gv = numbers(grid);
    const out = new Float64Array(batch * channels * outSize);
    const coord = new Array<number>(r);
    const taps: Array<{ idx: number[]; w: number[] }> = new Array(r);
    for (let n = 0; n < batch; n++) {
      for (let o = 0; o < outSize; o++) {
        for (let a = 0; a < r; a++) {
          // grid[..., 0] is the innermost (width) axis.
          let c = denormalize(gv[(n * outSize + o) * r + (r - 1 - a)], dims[a]);
          if (mode === 'nearest') c = r === 3 ? roundAway(c) : roundEven(c);
          if (c < lo[a] || c > hi[a]) {
            if (padding === 'border') c = Math.min(dims[a] - 1, Math.max(0, c));
            else if (padding === 'reflection') c = reflect(c, lo[a], hi[a]);
          }
          coord[a] = c;
        }
        for (let a = 0; a < r; a++) {
          const c = coord[a];
          if (mode === 'nearest') {
            taps[a] = { idx: [fetchIndex(Math.trunc(c), a)], w: [1] };
            continue;
          }
          const c0 = Math.floor(c);
          const t = c - c0;
          if (mode === 'linear') taps[a] = { idx: [fetchIndex(c0, a), fetchIndex(c0 + 1, a)], w: [1 - t, t] };
          else
            taps[a] = {
              idx: [-1, 0, 1, 2].map((k) => fetchIndex(c0 + k, a)),
              w: [-1, 0, 1, 2].map((k) => cubicKernel(k - t, -0.75)),
            };
        }
        for (let ch = 0; ch < channels; ch++) {
          const base = (n * channels + ch) * inSize;
          const sum = (a: number, offset: number, weight: number): number => {
            if (a === r) return weight * xv[base + offset];
            let s = 0;
            const p = taps[a];
            for (let k = 0; k < p.idx.length; k++)
              if (p.idx[k] >= 0 && p.w[k] !== 0) s += sum(a + 1, offset + p.idx[k] * inStrides[a], weight * p.w[k]);
            return s;
          };
          out[(n * channels + ch) * outSize + o] = sum(0, 0, 1);
        }
      }
    }
    return [fromNumbers(x.dtype, [batch, channels, ...outSpatial], out)];
  },
};

// ---------------------------------------------------------------- AffineGrid

// Inputs: theta [N, 2, 3] or [N, 3, 4]; size [N, C, H, W] or [N, C, D, H, W]. Output [N, (D,) H, W, 2|3].
const affineGrid: OpSchema = {
  op: 'AffineGrid',
  attrs: { align_corners: 'int' },
  infer(ctx) {
    const theta = ctx.shape(0);
    const size = ctx.symbolic(1);
    const len = size?.length ?? ctx.shape(1)?.[0];
    if (typeof len !== 'number') return ctx.output(0, ctx.dtype(0), undefined);
    if (len !== 4 && len !== 5) ctx.fail(`size has ${len} entries; expected 4 (2-D) or 5 (3-D)`);
    const spatial = size ? size.slice(2) : new Array<Dim>(len - 2).fill(null);
    ctx.output(0, ctx.dtype(0), [theta?.[0] ?? size?.[0] ?? null, ...spatial, len - 2]);
  },
  kernel(ctx) {
    const theta = ctx.input(0);
    const size = Array.from(numbers(ctx.input(1)));
    const alignCorners = ctx.node.int('align_corners', 0) === 1;
    const spatial = size.slice(2);
    const r = spatial.length;
    const batch = theta.dims[0];
    if (theta.dims[1] !== r || theta.dims[2] !== r + 1) ctx.fail(`theta [${theta.dims}] does not fit a ${r}-D grid`);
    // Base grid coordinates along an axis of length d, in [−1, 1].
    const base = (i: number, d: number): number => {
      if (alignCorners) return d === 1 ? -1 : -1 + (2 * i) / (d - 1);
      return (2 * i + 1) / d - 1;
    };
    const t = numbers(theta);
    const count = shapeSize(spatial);
    const out = new Float64Array(batch * count * r);
    const pos = new Array<number>(r);
    const homo = new Array<number>(r + 1);
    for (let n = 0; n < batch; n++) {
      for (let p = 0; p < count; p++) {
        let rest = p;
        for (let a = r - 1; a >= 0; a--) {
          pos[a] = rest % spatial[a];
          rest = Math.floor(rest / spatial[a]);
        }
        // Homogeneous point (x, y, [z,] 1): x runs along the innermost axis.
        for (let k = 0; k < r; k++) homo[k] = base(pos[r - 1 - k], spatial[r - 1 - k]);
        homo[r] = 1;
        for (let row = 0; row < r; row++) {
          let s = 0;
          for (let k = 0; k <= r; k++) s += t[(n * r + row) * (r + 1) + k] * homo[k];
          out[(n * count + p) * r + row] = s;
        }
      }
    }
    return [fromNumbers(theta.dtype, [batch, ...spatial, r], out)];
  },
};

// ---------------------------------------------------------------- RoiAlign

/** Bilinear weights of a RoiAlign sample point (Caffe2/Detectron rules): none when far outside. */
function roiSample(y: number, x: number, height: number, width: number): Array<[number, number]> {
  if (y < -1 || y > height || x < -1 || x > width) return [];
  let yy = Math.max(y, 0);
  let xx = Math.max(x, 0);
  let y0 = Math.trunc(yy);
  let x0 = Math.trunc(xx);
  let y1 = y0 + 1;
  let x1 = x0 + 1;
  if (y0 >= height - 1) {
    y0 = y1 = height - 1;
    yy = y0;
  }
  if (x0 >= width - 1) {
    x0 = x1 = width - 1;
    xx = x0;
  }
  const ly = yy - y0;
  const lx = xx - x0;
  return [
    [y0 * width + x0, (1 - ly) * (1 - lx)],
    [y0 * width + x1, (1 - ly) * lx],
    [y1 * width + x0, ly * (1 - lx)],
    [y1 * width + x1, ly * lx],
  ];
}

// Inputs: X [N, C, H, W], rois [R, 4] as (x1, y1, x2, y2), batch_indices [R]. Output [R, C, oh, ow].
const roiAlign: OpSchema = {
  op: 'RoiAlign',
  attrs: {
    coordinate_transformation_mode: 'string',
    mode: 'string',
    output_height: 'int',
    output_width: 'int',
    sampling_ratio: 'int',
    spatial_scale: 'float',
  },
  infer(ctx) {
    const x = ctx.shape(0);
    const rois = ctx.shape(1);
    if (x && x.length !== 4) ctx.fail(`input has rank ${x.length}; expected [N, C, H, W]`);
    if (rois && (rois.length !== 2 || (typeof rois[1] === 'number' && rois[1] !== 4))) ctx.fail('rois must be [num_rois, 4]');
    const count = rois?.[0] ?? ctx.shape(2)?.[0] ?? null;
    ctx.output(0, ctx.dtype(0), [count, x ? x[1] : null, ctx.node.int('output_height', 1), ctx.node.int('output_width', 1)]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const rois = numbers(ctx.input(1));
    const batchIdx = numbers(ctx.input(2));
    const [, channels, height, width] = x.dims;
    const oh = ctx.node.int('output_height', 1);
    const ow = ctx.node.int('output_width', 1);
    const ratio = ctx.node.int('sampling_ratio', 0);
    const scale = ctx.node.float('spatial_scale', 1);
    const isMax = ctx.node.str('mode', 'avg') === 'max';
    // Opset 16 made half_pixel (shift by half a pixel, no minimum size) the default.
    const halfPixel = ctx.opset >= 16 && ctx.node.str('coordinate_transformation_mode', 'half_pixel') === 'half_pixel';
    const offset = halfPixel ? 0.5 : 0;
    const count = batchIdx.length;
    const xv = numbers(x);
    const out = new Float64Array(count * channels * oh * ow);
    for (let r = 0; r < count; r++) {
      const [x1, y1, x2, y2] = [0, 1, 2, 3].map((k) => rois[r * 4 + k] * scale - offset);
      // Without half_pixel, malformed ROIs are forced to at least 1×1.
      const roiW = halfPixel ? x2 - x1 : Math.max(x2 - x1, 1);
      const roiH = halfPixel ? y2 - y1 : Math.max(y2 - y1, 1);
      const binH = roiH / oh;
      const binW = roiW / ow;
      const gridH = ratio > 0 ? ratio : Math.ceil(roiH / oh);
      const gridW = ratio > 0 ? ratio : Math.ceil(roiW / ow);
      const samples = Math.max(gridH * gridW, 1);
      for (let ph = 0; ph < oh; ph++) {
        for (let pw = 0; pw < ow; pw++) {
          const points: Array<Array<[number, number]>> = [];
          for (let iy = 0; iy < gridH; iy++) {
            const y = y1 + ph * binH + ((iy + 0.5) * binH) / gridH;
            for (let ix = 0; ix < gridW; ix++) points.push(roiSample(y, x1 + pw * binW + ((ix + 0.5) * binW) / gridW, height, width));
          }
          for (let c = 0; c < channels; c++) {
            const base = (batchIdx[r] * channels + c) * height * width;
            let acc = 0;
            points.forEach((taps, k) => {
              if (isMax) {
                // The reference's max mode takes the largest weighted corner, not the interpolated value.
                const v = taps.length === 0 ? 0 : Math.max(...taps.map(([i, w]) => w * xv[base + i]));
                acc = k === 0 ? v : Math.max(acc, v);
              } else for (const [i, w] of taps) acc += w * xv[base + i];
            });
            out[((r * channels + c) * oh + ph) * ow + pw] = isMax ? acc : acc / samples;
          }
        }
      }
    }
    return [fromNumbers(x.dtype, [count, channels, oh, ow], out)];
  },
};

// ---------------------------------------------------------------- NonMaxSuppression

/** A box as [y1, x1, y2, x2] with corners ordered (center_point_box 0) or from [xc, yc, w, h] (1). */
function boxCorners(v: ArrayLike<number>, at: number, centered: boolean): [number, number, number, number] {
  if (centered) {
    const [xc, yc, w, h] = [v[at], v[at + 1], v[at + 2], v[at + 3]];
    return [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2];
  }
  return [Math.min(v[at], v[at + 2]), Math.min(v[at + 1], v[at + 3]), Math.max(v[at], v[at + 2]), Math.max(v[at + 1], v[at + 3])];
}

/** Whether box b overlaps box a by more than the IoU threshold. */
function suppresses(a: number[], b: number[], threshold: number): boolean {
  const ih = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const iw = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (ih <= 0 || iw <= 0) return false;
  const inter = ih * iw;
  const areaA = (a[2] - a[0]) * (a[3] - a[1]);
  const areaB = (b[2] - b[0]) * (b[3] - b[1]);
  const union = areaA + areaB - inter;
  if (areaA <= 0 || areaB <= 0 || union <= 0) return false;
  return inter / union > threshold;
}

// Inputs: boxes [B, n, 4], scores [B, classes, n], max_output_boxes_per_class, iou_threshold, score_threshold.
// Output: selected [k, 3] as (batch, class, box), k data-dependent.
const nonMaxSuppression: OpSchema = {
  op: 'NonMaxSuppression',
  attrs: { center_point_box: 'int' },
  infer(ctx) {
    const boxes = ctx.shape(0);
    const scores = ctx.shape(1);
    if (boxes && (boxes.length !== 3 || (typeof boxes[2] === 'number' && boxes[2] !== 4))) ctx.fail('boxes must be [batch, boxes, 4]');
    if (scores && scores.length !== 3) ctx.fail('scores must be [batch, classes, boxes]');
    // At most batch × classes × min(boxes, max_output) rows; the count itself depends on the data.
    ctx.output(0, 'int64', [ctx.freshDim('nms'), 3]);
  },
  kernel(ctx) {
    const boxes = numbers(ctx.input(0));
    const scoresT = ctx.input(1);
    const scores = numbers(scoresT);
    const [batches, classes, count] = scoresT.dims;
    const maxT = ctx.optional(2);
    const iouT = ctx.optional(3);
    const scoreT = ctx.optional(4);
    const maxOut = maxT && maxT.size > 0 ? Math.max(0, numbers(maxT)[0]) : 0;
    const iou = iouT && iouT.size > 0 ? numbers(iouT)[0] : 0;
    const minScore = scoreT && scoreT.size > 0 ? numbers(scoreT)[0] : undefined;
    const centered = ctx.node.int('center_point_box', 0) === 1;
    const selected: number[] = [];
    for (let b = 0; b < batches; b++) {
      const corners = Array.from({ length: count }, (_, i) => boxCorners(boxes, (b * count + i) * 4, centered));
      for (let c = 0; c < classes; c++) {
        const s = (i: number) => scores[(b * classes + c) * count + i];
        // Highest score first; equal scores keep box order.
        const order = Array.from({ length: count }, (_, i) => i)
          .filter((i) => minScore === undefined || s(i) > minScore)
          .sort((i, j) => s(j) - s(i) || i - j);
        const kept: number[] = [];
        for (const i of order) {
          if (kept.length >= maxOut) break;
          if (kept.every((k) => !suppresses(corners[k], corners[i], iou))) {
            kept.push(i);
            selected.push(b, c, i);
          }
        }
      }
    }
    return [fromNumbers('int64', [selected.length / 3, 3], selected)];
  },
};

export const RESIZE_OPS: OpSchema[] = [resize, upsample, gridSample, affineGrid, roiAlign, nonMaxSuppression];
