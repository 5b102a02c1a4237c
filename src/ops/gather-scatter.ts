/**
 * Indexed reads and writes: GatherElements and GatherND, and their inverses Scatter (opsets 9–10),
 * ScatterElements and ScatterND with the none/add/mul/max/min reductions. (Gather itself is in
 * shape.ts, with the shape-value rules it carries.) Reads and reduction-free writes copy through
 * `takeElements`, so every dtype works; only the reductions go through numbers.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { shapeSize, type Tensor } from '../ir/tensor.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { appendElements, axisOf, checkSameShape, fromNumbers, indexMap, iota, numbers, offsetWith, strides, takeElements } from './util.js';

type Ctx = InferContext | KernelContext;

// ---------------------------------------------------------------- helpers

/** A possibly negative index along a dim of size `dim`, made non-negative; fails when out of range. */
function indexIn(ctx: KernelContext, i: number, dim: number): number {
  const j = i < 0 ? i + dim : i;
  if (!(j >= 0 && j < dim)) return ctx.fail(`index ${i} is out of range for a dim of size ${dim}`);
  return j;
}

// ---------------------------------------------------------------- GatherElements, GatherND

const gatherElements: OpSchema = {
  op: 'GatherElements',
  attrs: { axis: 'int' },
  infer(ctx) {
    const data = ctx.shape(0);
    const indices = ctx.shape(1);
    if (data && indices && data.length !== indices.length) ctx.fail(`indices have rank ${indices.length} but data rank ${data.length}`);
    if (data) axisOf(ctx, ctx.node.int('axis', 0), data.length);
    ctx.output(0, ctx.dtype(0), indices);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const ind = ctx.input(1);
    const axis = axisOf(ctx, ctx.node.int('axis', 0), x.rank);
    if (ind.rank !== x.rank) return ctx.fail(`indices have rank ${ind.rank} but data rank ${x.rank}`);
    if (ind.dims.some((d, i) => i !== axis && d > x.dims[i])) return ctx.fail(`indices [${ind.dims}] exceed data [${x.dims}]`);
    const iv = numbers(ind);
    const st = strides(x.dims);
    const src = indexMap(ind.dims, (c, i) => offsetWith(c, st, axis, indexIn(ctx, iv[i], x.dims[axis])));
    return [takeElements(x, ind.dims, src)];
  },
};

const gatherND: OpSchema = {
  op: 'GatherND',
  attrs: { batch_dims: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const data = ctx.shape(0);
    const indices = ctx.shape(1);
    const batch = ctx.node.int('batch_dims', 0);
    if (!data || !indices) return ctx.output(0, dtype, undefined);
    if (indices.length < 1) ctx.fail('GatherND indices must have rank ≥ 1');
    if (batch < 0 || batch >= Math.min(data.length, indices.length)) ctx.fail(`batch_dims ${batch} is out of range`);
    checkSameShape(ctx, 'indices batch', indices.slice(0, batch), data.slice(0, batch));
    const depth = indices[indices.length - 1];
    if (typeof depth !== 'number') return ctx.output(0, dtype, undefined);
    if (batch + depth > data.length) ctx.fail(`indices address ${depth} dims after ${batch} batch dims of a rank-${data.length} tensor`);
    ctx.output(0, dtype, [...indices.slice(0, -1), ...data.slice(batch + depth)]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const ind = ctx.input(1);
    const batch = ctx.node.int('batch_dims', 0);
    const q = ind.rank;
    const depth = ind.dims[q - 1];
    if (q < 1 || batch + depth > x.rank) return ctx.fail(`indices [${ind.dims}] do not address data [${x.dims}]`);
    if (ind.dims.slice(0, batch).some((d, i) => d !== x.dims[i])) return ctx.fail('indices and data differ in the batch dims');
    const dims = [...ind.dims.slice(0, q - 1), ...x.dims.slice(batch + depth)];
    const inner = shapeSize(x.dims.slice(batch + depth));
    const batches = shapeSize(x.dims.slice(0, batch));
    const perBatch = shapeSize(ind.dims.slice(batch, q - 1));
    const batchStride = shapeSize(x.dims.slice(batch));
    const st = strides(x.dims);
    const iv = numbers(ind);
    const src = new Int32Array(shapeSize(dims));
    let k = 0;
    for (let b = 0; b < batches; b++) {
      for (let t = 0; t < perBatch; t++) {
        const tuple = (b * perBatch + t) * depth;
        let off = b * batchStride;
        for (let j = 0; j < depth; j++) off += indexIn(ctx, iv[tuple + j], x.dims[batch + j]) * st[batch + j];
        for (let r = 0; r < inner; r++) src[k++] = off + r;
      }
    }
    return [takeElements(x, dims, src)];
  },
};

// ---------------------------------------------------------------- Scatter, ScatterElements, ScatterND

const REDUCTIONS: Readonly<Record<string, (a: number, b: number) => number>> = {
  add: (a, b) => a + b,
  mul: (a, b) => a * b,
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.max(a, b)),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.min(a, b)),
};

/** The reduction attribute (opset 16: none/add/mul; 18: also max/min); always 'none' for Scatter. */
function reductionOf(ctx: Ctx): string {
  if (ctx.node.opType === 'Scatter' || ctx.opset < 16) return 'none';
  const r = ctx.node.str('reduction', 'none');
  const allowed = ctx.opset >= 18 ? ['none', 'add', 'mul', 'max', 'min'] : ['none', 'add', 'mul'];
  if (!allowed.includes(r)) return ctx.fail(`unknown reduction "${r}" at opset ${ctx.opset}`);
  return r;
}

/**
 * Writes `block` consecutive elements of `updates` for each entry of `targets` (the flat offset
 * in `data` of the first one), in order, so with duplicate targets the last write wins or the
 * reduction folds them in order.
 */
function scatterInto(data: Tensor, updates: Tensor, targets: ArrayLike<number>, block: number, reduction: string): Tensor {
  if (reduction === 'none') {
    const src = iota(data.size);
    for (let u = 0; u < targets.length; u++) for (let r = 0; r < block; r++) src[targets[u] + r] = data.size + u * block + r;
    return takeElements(appendElements(data, updates), data.dims, src);
  }
  const combine = REDUCTIONS[reduction];
  // float32 results round after every step, as a float32 loop would.
  const round = data.dtype === 'float32' ? Math.fround : (v: number) => v;
  const out = Float64Array.from(numbers(data));
  const uv = numbers(updates);
  for (let u = 0; u < targets.length; u++) {
    for (let r = 0; r < block; r++) {
      const t = targets[u] + r;
      out[t] = round(combine(out[t], uv[u * block + r]));
    }
  }
  return fromNumbers(data.dtype, data.dims, out);
}

function scatterElementsInfer(ctx: InferContext): void {
  reductionOf(ctx);
  const data = ctx.shape(0);
  const indices = ctx.shape(1);
  if (data && indices && data.length !== indices.length) ctx.fail(`indices have rank ${indices.length} but data rank ${data.length}`);
  if (data) axisOf(ctx, ctx.node.int('axis', 0), data.length);
  checkSameShape(ctx, 'updates', ctx.shape(2), indices);
  const [a, b] = [ctx.dtype(0), ctx.dtype(2)];
  if (a && b && a !== b) ctx.fail(`updates are ${b} but data is ${a}`);
  ctx.output(0, a ?? b, data);
}

function scatterElementsKernel(ctx: KernelContext): Tensor[] {
  const x = ctx.input(0);
  const ind = ctx.input(1);
  const upd = ctx.input(2);
  const axis = axisOf(ctx, ctx.node.int('axis', 0), x.rank);
  if (ind.rank !== x.rank || ind.dims.join() !== upd.dims.join())
    return ctx.fail(`indices [${ind.dims}] and updates [${upd.dims}] do not match`);
  if (ind.dims.some((d, i) => i !== axis && d > x.dims[i])) return ctx.fail(`indices [${ind.dims}] exceed data [${x.dims}]`);
  if (upd.dtype !== x.dtype) return ctx.fail(`updates are ${upd.dtype} but data is ${x.dtype}`);
  const iv = numbers(ind);
  const st = strides(x.dims);
  const targets = indexMap(ind.dims, (c, i) => offsetWith(c, st, axis, indexIn(ctx, iv[i], x.dims[axis])));
  return [scatterInto(x, upd, targets, 1, reductionOf(ctx))];
}

const scatterElements: OpSchema = {
  op: 'ScatterElements',
  attrs: { axis: 'int', reduction: 'string' },
  infer: scatterElementsInfer,
  kernel: scatterElementsKernel,
};

/** Scatter (opset 9–10, deprecated at 11) is ScatterElements without reductions. */
const scatter: OpSchema = {
  op: 'Scatter',
  attrs: { axis: 'int' },
  infer: scatterElementsInfer,
  kernel: scatterElementsKernel,
};

const scatterND: OpSchema = {
  op: 'ScatterND',
  attrs: { reduction: 'string' },
  infer(ctx) {
    reductionOf(ctx);
    const data = ctx.shape(0);
    const indices = ctx.shape(1);
    const depth = indices?.[indices.length - 1];
    if (data && indices && typeof depth === 'number') {
      if (depth > data.length) ctx.fail(`indices address ${depth} dims of a rank-${data.length} tensor`);
      checkSameShape(ctx, 'updates', ctx.shape(2), [...indices.slice(0, -1), ...data.slice(depth)]);
    }
    const [a, b] = [ctx.dtype(0), ctx.dtype(2)];
    if (a && b && a !== b) ctx.fail(`updates are ${b} but data is ${a}`);
    ctx.output(0, a ?? b, data);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const ind = ctx.input(1);
    const upd = ctx.input(2);
    const q = ind.rank;
    const depth = ind.dims[q - 1];
    if (q < 1 || depth > x.rank) return ctx.fail(`indices [${ind.dims}] do not address data [${x.dims}]`);
    const want = [...ind.dims.slice(0, q - 1), ...x.dims.slice(depth)];
    if (upd.dims.join() !== want.join()) return ctx.fail(`updates have shape [${upd.dims}], expected [${want}]`);
    if (upd.dtype !== x.dtype) return ctx.fail(`updates are ${upd.dtype} but data is ${x.dtype}`);
    const st = strides(x.dims);
    const iv = numbers(ind);
    const count = shapeSize(ind.dims.slice(0, q - 1));
    const targets = new Float64Array(count);
    for (let u = 0; u < count; u++) {
      for (let j = 0; j < depth; j++) targets[u] += indexIn(ctx, iv[u * depth + j], x.dims[j]) * st[j];
    }
    return [scatterInto(x, upd, targets, shapeSize(x.dims.slice(depth)), reductionOf(ctx))];
  },
};

export const GATHER_SCATTER_OPS: OpSchema[] = [gatherElements, gatherND, scatterElements, scatter, scatterND];
