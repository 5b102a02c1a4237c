/**
 * Pooling: AveragePool, MaxPool, LpPool, their Global forms (one value per [n, c] plane), and
 * MaxUnpool. The windowed pools reduce each window of the shared geometry in window.ts; the
 * padding taps count toward AveragePool's divisor only with count_include_pad.
 * Spec: https://onnx.ai/onnx/operators/
 */
import type { AttrInput } from '../ir/attributes.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import { transposedWindowGrad } from './conv.js';
import { elementCount, fromOutput0, spatialDims, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { fromNumbers, numbers, strides, unknownDims } from './util.js';
import { extent, outputDim, PAD, padsAt, type Resolved, resolveWindow, spatialShape, type Window, windowOf } from './window.js';

type Ctx = InferContext | KernelContext | GradContext;

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

// ---------------------------------------------------------------- gradients

/**
 * MaxPool: each window's gradient goes to the element its maximum came from, through the
 * node's Indices output (added when missing). Windows that do not overlap take MaxUnpool with
 * X's shape as the output shape (the indices are flat positions in X); overlapping windows may
 * pick one element twice, so their gradients are added with ScatterElements (reduction add,
 * opset 16), as are float64 ones (onnxruntime's MaxUnpool is float32 only).
 */
const maxPoolGrad: GradRule = fromOutput0((c, dy) => {
  if (!c.needs(0)) return;
  if (c.node.int('storage_order', 0) !== 0) c.fail('the gradient with column-major indices (storage_order=1) is not supported');
  const x = c.input(0);
  const why = 'the gradient of MaxPool';
  const inDims = spatialDims(c, x, why);
  const outDims = spatialDims(c, c.output(0), why);
  const win = windowOf(c, poolKernelShape(c));
  const indices = c.forwardOutput(1, { kind: 'tensor', dtype: 'int64', shape: c.shape(c.output(0)) });
  const overlap = inDims.some((_, i) => win.strides[i] < extent(win, i));
  if (!overlap && c.dtype(x) === 'float32') {
    const begin = inDims.map((size, i) => padsAt(win, i, size)[0]);
    // MaxUnpool refuses an output shape below (out − 1)·stride + kernel − pads: pad its end enough.
    const end = inDims.map((size, i) => Math.max(0, (outDims[i] - 1) * win.strides[i] + win.kernel[i] - begin[i] - size));
    const attrs: Record<string, AttrInput> = { kernel_shape: win.kernel, strides: win.strides };
    if (begin.some((p) => p !== 0) || end.some((p) => p !== 0)) attrs.pads = [...begin, ...end];
    return c.setGrad(0, c.op('MaxUnpool', [dy, indices, c.shapeOf(x)], attrs));
  }
  if (c.opset < 16)
    c.fail('overlapping (or float64) MaxPool windows need opset 16 for their gradient (ScatterElements with reduction="add")');
  const xs = c.shape(x);
  const size = xs.every((d) => typeof d === 'number')
    ? c.ints([(xs as number[]).reduce((a, b) => a * b, 1)])
    : c.op('Reshape', [c.op('Size', [x]), c.ints([1])]);
  const zeros = c.op('ConstantOfShape', [size], { value: Tensor.zeros(c.dtype(x), [1]) });
  const flat = c.ints([-1]);
  const added = c.op('ScatterElements', [zeros, c.op('Reshape', [indices, flat]), c.op('Reshape', [dy, flat])], {
    axis: 0,
    reduction: 'add',
  });
  c.setGrad(0, c.op('Reshape', [added, c.shapeOf(x)]));
});

/** How many taps of each window position along one axis AveragePool divides by. */
function tapCounts(win: Window, i: number, size: number, begin: number, end: number, outLength: number, includePad: boolean): number[] {
  const counts: number[] = [];
  for (let o = 0; o < outLength; o++) {
    let n = 0;
    for (let j = 0; j < win.kernel[i]; j++) {
      const p = o * win.strides[i] - begin + j * win.dilations[i];
      if ((p >= 0 && p < size) || (includePad && p >= -begin && p < size + end)) n++;
    }
    counts.push(n);
  }
  return counts;
}

/**
 * AveragePool: dY divided by each window's tap count, spread back over the window by a
 * depthwise ConvTranspose with a ones kernel. When every window has the same count (no padding
 * left out, no partial ceil_mode window) the division folds into the kernel.
 */
const averagePoolGrad: GradRule = fromOutput0((c, dy) => {
  if (!c.needs(0)) return;
  const x = c.input(0);
  const why = 'the gradient of AveragePool';
  const inDims = spatialDims(c, x, why);
  const outDims = spatialDims(c, c.output(0), why);
  const channels = c.shape(x)[1];
  if (typeof channels !== 'number') return c.fail(`${why} needs the channel count known`);
  const win = windowOf(c, poolKernelShape(c));
  const pads = inDims.map((size, i) => padsAt(win, i, size));
  const begin = pads.map((p) => p[0]);
  const includePad = c.node.int('count_include_pad', 0) === 1;
  const perAxis = inDims.map((size, i) => tapCounts(win, i, size, pads[i][0], pads[i][1], outDims[i], includePad));
  // Outer product of the per-axis counts: the count of each output position.
  let counts = [1];
  for (const axis of perAxis) counts = counts.flatMap((p) => axis.map((n) => p * n));
  const dtype = c.dtype(x);
  const uniform = counts.every((n) => n === counts[0]);
  const kernelSize = win.kernel.reduce((a, b) => a * b, 1);
  const weight = c.tensor(
    fromNumbers(dtype, [channels, 1, ...win.kernel], new Array<number>(channels * kernelSize).fill(uniform ? 1 / counts[0] : 1)),
    'avgpool_kernel',
  );
  const scaled = uniform
    ? dy
    : c.op('Mul', [
        dy,
        c.tensor(
          fromNumbers(
            dtype,
            outDims,
            counts.map((n) => (n > 0 ? 1 / n : 0)),
          ),
          'avgpool_scale',
        ),
      ]);
  c.setGrad(0, transposedWindowGrad(c, scaled, weight, win, begin, inDims, outDims, channels));
});

const globalAveragePoolGrad: GradRule = fromOutput0((c, dy) => {
  if (!c.needs(0)) return;
  const x = c.input(0);
  const axes = Array.from({ length: c.shape(x).length - 2 }, (_, i) => i + 2);
  c.setGrad(0, c.op('Expand', [c.op('Div', [dy, elementCount(c, x, axes)]), c.shapeOf(x)]));
});

/** Every element equal to its plane's maximum gets dY (all of them on ties). */
const globalMaxPoolGrad: GradRule = fromOutput0((c, dy) => {
  if (!c.needs(0)) return;
  const x = c.input(0);
  c.setGrad(0, c.op('Where', [c.op('Equal', [x, c.output(0)]), dy, c.scalar(0, c.dtype(x))]));
});

export const POOL_OPS: OpSchema[] = withGradients([averagePool, maxPool, lpPool, ...GLOBAL_POOLS, maxUnpool], {
  MaxPool: maxPoolGrad,
  AveragePool: averagePoolGrad,
  GlobalAveragePool: globalAveragePoolGrad,
  GlobalMaxPool: globalMaxPoolGrad,
});
