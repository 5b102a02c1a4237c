/**
 * Data movement and indexing operators: Split, Tile, Pad, CenterCropPad, GatherElements,
 * GatherND, Scatter/ScatterElements/ScatterND, DepthToSpace, SpaceToDepth, OneHot, NonZero,
 * Compress, Trilu, EyeLike, Unique, TopK, ReverseSequence, CumSum. Kernels build an index map
 * and copy through `takeElements`, so they work for every dtype (strings, int64 and 4-bit types
 * included); only arithmetic (Scatter reductions, CumSum, TopK's ordering) goes through numbers.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { dimAdd, dimDiv, dimMul, dimProduct } from '../ir/dims.js';
import { type DType, dtypeFromCode } from '../ir/dtype.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, fromNumbers, iota, numbers, strides, takeElements } from './util.js';

type Ctx = InferContext | KernelContext;

// ---------------------------------------------------------------- helpers

/** A shape of known rank whose dims are all unknown. */
function unknownDims(rank: number): Shape {
  return new Array<Dim>(rank).fill(null);
}

/** Input i's elements when every one is a known number (constant, or shape values already fixed). */
function knownInts(ctx: InferContext, i: number): number[] | undefined {
  const s = ctx.symbolic(i);
  return s?.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
}

/** The elements of an integer tensor as a plain array. */
function intList(t: Tensor): number[] {
  return Array.from(numbers(t));
}

/** Fails when two shapes are known to differ (in rank, or in a dim both know). */
function checkSameShape(ctx: InferContext, what: string, got: Shape | undefined, want: Shape | undefined): void {
  if (!got || !want) return;
  const differs = got.length !== want.length || got.some((d, i) => typeof d === 'number' && typeof want[i] === 'number' && d !== want[i]);
  if (differs) ctx.fail(`${what} has shape [${got.map((d) => d ?? '?')}], expected [${want.map((d) => d ?? '?')}]`);
}

/**
 * The source index of every element of a tensor of shape `dims`, computed from its coordinates
 * and flat index in row-major order. `coord` is reused between calls, so `source` must not keep it.
 */
function indexMap(dims: readonly number[], source: (coord: readonly number[], flat: number) => number): Int32Array {
  const n = shapeSize(dims);
  const src = new Int32Array(n);
  const coord = new Array<number>(dims.length).fill(0);
  for (let i = 0; i < n; i++) {
    src[i] = source(coord, i);
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++coord[d] < dims[d]) break;
      coord[d] = 0;
    }
  }
  return src;
}

/** Flat offset of `coord` under strides `st`, with the coordinate on `axis` replaced by `at`. */
function offsetWith(coord: readonly number[], st: readonly number[], axis: number, at: number): number {
  let o = 0;
  for (let d = 0; d < coord.length; d++) o += (d === axis ? at : coord[d]) * st[d];
  return o;
}

/** A possibly negative index along a dim of size `dim`, made non-negative; fails when out of range. */
function indexIn(ctx: KernelContext, i: number, dim: number): number {
  const j = i < 0 ? i + dim : i;
  if (!(j >= 0 && j < dim)) return ctx.fail(`index ${i} is out of range for a dim of size ${dim}`);
  return j;
}

/**
 * One flat tensor holding a's elements followed by b's. Kernels that mix elements of two tensors
 * (data and updates, data and a pad value) stay a single `takeElements` copy: an index ≥ a.size
 * picks from b.
 */
function appendElements(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`cannot mix ${a.dtype} and ${b.dtype} elements`);
  const n = a.size + b.size;
  if (a.dtype === 'string') return Tensor.fromStrings([n], [...a.stringBytes, ...b.stringBytes]);
  if (a.dtype === 'int4' || a.dtype === 'uint4' || a.dtype === 'float4e2m1') {
    // Two elements per byte: unpack and repack nibble by nibble.
    const nibble = (t: Tensor, j: number): number => (j & 1 ? t.bytes[j >> 1] >> 4 : t.bytes[j >> 1] & 0xf);
    const out = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) {
      const v = i < a.size ? nibble(a, i) : nibble(b, i - a.size);
      out[i >> 1] |= i & 1 ? v << 4 : v;
    }
    return Tensor.fromBytes(a.dtype, [n], out);
  }
  const da = a.data;
  const db = b.data as typeof da;
  const Ctor = da.constructor as new (n: number) => typeof da;
  const out = new Ctor(da.length + db.length);
  for (let i = 0; i < da.length; i++) out[i] = da[i];
  for (let i = 0; i < db.length; i++) out[da.length + i] = db[i];
  return Tensor.from(a.dtype, [n], out);
}

/** `x` with the elements whose index map entry is `x.size` replaced by the one element of `fill`. */
function withFill(ctx: KernelContext, x: Tensor, fill: Tensor, dims: readonly number[], src: Int32Array): Tensor {
  if (fill.dtype !== x.dtype) return ctx.fail(`fill value is ${fill.dtype} but the data is ${x.dtype}`);
  return takeElements(appendElements(x, fill.reshape([1])), dims, src);
}

/** Orders numbers ascending with NaN last (as numpy sorts), NaNs equal to each other. */
function compareNumbers(a: number, b: number): number {
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Comparison of two elements of `t` by flat index: numeric order, or byte order for strings. */
function elementOrder(t: Tensor): (i: number, j: number) => number {
  if (t.dtype === 'string') {
    const s = t.stringBytes;
    return (i, j) => compareBytes(s[i], s[j]);
  }
  const v = numbers(t);
  return (i, j) => compareNumbers(v[i], v[j]);
}

/** Flags of the non-zero elements (non-empty strings). */
function nonZeroFlags(t: Tensor): Uint8Array {
  if (t.dtype === 'string') return Uint8Array.from(t.stringBytes, (s) => (s.length > 0 ? 1 : 0));
  const v = numbers(t);
  return Uint8Array.from({ length: v.length }, (_, i) => (v[i] !== 0 ? 1 : 0));
}

/** Copy of `x` restricted to `length` entries from `start` along `axis`. */
function sliceAxis(x: Tensor, axis: number, start: number, length: number): Tensor {
  const dims = [...x.dims];
  dims[axis] = length;
  const st = strides(x.dims);
  return takeElements(
    x,
    dims,
    indexMap(dims, (c) => offsetWith(c, st, axis, c[axis] + start)),
  );
}

/** Outer / axis / inner extents of a shape around one axis, for loops along that axis. */
function aroundAxis(dims: readonly number[], axis: number): [number, number, number] {
  return [shapeSize(dims.slice(0, axis)), dims[axis], shapeSize(dims.slice(axis + 1))];
}

// ---------------------------------------------------------------- Split

/**
 * Sizes of Split's outputs along the axis. `explicit` is the split list (attribute before opset
 * 13, input since), null when given but unknown, undefined when absent (equal parts).
 */
function splitSizes(ctx: Ctx, dim: Dim, count: number, explicit: readonly Dim[] | null | undefined): Dim[] {
  if (count < 1) return ctx.fail('Split has no outputs');
  if (explicit === null) return unknownDims(count);
  if (explicit) {
    if (explicit.length !== count) ctx.fail(`split has ${explicit.length} sizes for ${count} outputs`);
    if (explicit.some((s) => typeof s === 'number' && s < 0)) ctx.fail(`split sizes [${explicit}] include a negative size`);
    if (typeof dim === 'number' && explicit.every((s) => typeof s === 'number')) {
      const total = (explicit as number[]).reduce((a, b) => a + b, 0);
      if (total !== dim) ctx.fail(`split sizes sum to ${total}, but the dim is ${dim}`);
    }
    return [...explicit];
  }
  const numOutputs = ctx.opset >= 18 ? ctx.node.int('num_outputs') : undefined;
  if (numOutputs !== undefined && numOutputs !== count) ctx.fail(`num_outputs is ${numOutputs} but the node has ${count} outputs`);
  if (typeof dim !== 'number') return new Array<Dim>(count).fill(dimDiv(dim, count));
  if (dim % count === 0) return new Array<Dim>(count).fill(dim / count);
  // Since opset 18 `num_outputs` allows an uneven split: parts of ceil(dim / n), the last smaller.
  if (numOutputs === undefined) return ctx.fail(`a dim of ${dim} does not split into ${count} equal parts`);
  const chunk = Math.ceil(dim / count);
  const last = dim - chunk * (count - 1);
  if (last < 0) return ctx.fail(`a dim of ${dim} does not split into ${count} parts of ${chunk}`);
  return [...new Array<Dim>(count - 1).fill(chunk), last];
}

const split: OpSchema = {
  op: 'Split',
  attrs: { axis: 'int', split: 'ints', num_outputs: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    if (!shape) {
      for (let i = 0; i < ctx.numOutputs; i++) ctx.output(i, dtype, undefined);
      return;
    }
    const axis = axisOf(ctx, ctx.node.int('axis', 0), shape.length);
    let explicit: Dim[] | null | undefined;
    if (ctx.opset < 13) explicit = ctx.node.ints('split');
    else if (ctx.hasInput(1)) explicit = ctx.symbolic(1) ?? null;
    const sizes = splitSizes(ctx, shape[axis], ctx.numOutputs, explicit);
    // Splitting a shape vector (Shape → Split) keeps its elements known for later reshapes.
    const values = shape.length === 1 ? ctx.symbolic(0) : undefined;
    let start: number | undefined = 0;
    sizes.forEach((size, i) => {
      const out = [...shape];
      out[axis] = size;
      ctx.output(i, dtype, out);
      if (values && start !== undefined && typeof size === 'number') ctx.outputSymbolic(i, values.slice(start, start + size));
      start = start !== undefined && typeof size === 'number' ? start + size : undefined;
    });
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axis = axisOf(ctx, ctx.node.int('axis', 0), x.rank);
    const given = ctx.opset < 13 ? undefined : ctx.optional(1);
    const explicit = ctx.opset < 13 ? ctx.node.ints('split') : given && intList(given);
    const sizes = splitSizes(ctx, x.dims[axis], ctx.node.outputs.length, explicit) as number[];
    let start = 0;
    return sizes.map((size) => {
      const part = sliceAxis(x, axis, start, size);
      start += size;
      return part;
    });
  },
};

// ---------------------------------------------------------------- Tile

const tile: OpSchema = {
  op: 'Tile',
  attrs: {},
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, dtype, undefined);
    const repeats = ctx.symbolic(1);
    if (!repeats) return ctx.output(0, dtype, unknownDims(shape.length));
    if (repeats.length !== shape.length) ctx.fail(`repeats has ${repeats.length} entries for an input of rank ${shape.length}`);
    if (repeats.some((r) => typeof r === 'number' && r < 0)) ctx.fail(`repeats [${repeats}] include a negative count`);
    ctx.output(
      0,
      dtype,
      shape.map((d, i) => dimMul(d, repeats[i])),
    );
    const values = ctx.symbolic(0);
    const times = repeats[0];
    if (values && shape.length === 1 && typeof times === 'number')
      ctx.outputSymbolic(0, Array.from({ length: times }, () => values).flat());
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const repeats = intList(ctx.input(1));
    if (repeats.length !== x.rank) return ctx.fail(`repeats has ${repeats.length} entries for an input of rank ${x.rank}`);
    if (repeats.some((r) => r < 0)) return ctx.fail(`repeats [${repeats}] include a negative count`);
    const dims = x.dims.map((d, i) => d * repeats[i]);
    const st = strides(x.dims);
    return [
      takeElements(
        x,
        dims,
        indexMap(dims, (c) => c.reduce((o, v, d) => o + (v % x.dims[d]) * st[d], 0)),
      ),
    ];
  },
};

// ---------------------------------------------------------------- Pad

const PAD_MODES = ['constant', 'reflect', 'edge', 'wrap'];

function padMode(ctx: Ctx): string {
  const mode = ctx.node.str('mode', 'constant');
  if (!PAD_MODES.includes(mode)) return ctx.fail(`unknown Pad mode "${mode}"`);
  return mode;
}

/** Full-rank begin and end pads from the pads list ([begins…, ends…] over `axes`, default all). */
function padAmounts(ctx: Ctx, rank: number, pads: readonly Dim[], axes: readonly number[] | undefined): [Dim[], Dim[]] {
  const ax = axes ? axes.map((a) => axisOf(ctx, a, rank)) : Array.from({ length: rank }, (_, i) => i);
  if (new Set(ax).size !== ax.length) ctx.fail(`Pad axes [${axes}] repeat`);
  if (pads.length !== 2 * ax.length) ctx.fail(`pads has ${pads.length} entries; ${2 * ax.length} expected`);
  const begin = new Array<Dim>(rank).fill(0);
  const end = new Array<Dim>(rank).fill(0);
  ax.forEach((a, i) => {
    begin[a] = pads[i];
    end[a] = pads[ax.length + i];
  });
  return [begin, end];
}

/** Where output coordinate `c` of a padded dim reads in a dim of size `dim`; -1 for the fill value. */
function padSource(c: number, dim: number, mode: string): number {
  if (c >= 0 && c < dim) return c;
  switch (mode) {
    case 'edge':
      return c < 0 ? 0 : dim - 1;
    case 'reflect': {
      // Mirror without repeating the edge; period 2·(dim−1), like numpy for pads beyond the dim.
      if (dim === 1) return 0;
      const period = 2 * (dim - 1);
      const m = ((c % period) + period) % period;
      return m < dim ? m : period - m;
    }
    case 'wrap':
      return ((c % dim) + dim) % dim;
    default:
      return -1;
  }
}

/**
 * Pads `x`. Negative pads crop first (as onnxruntime does), so `reflect`, `edge` and `wrap`
 * read from the cropped data.
 */
function padTensor(ctx: KernelContext, x: Tensor, begin: number[], end: number[], mode: string, fill: Tensor): Tensor {
  const cropStart = begin.map((b) => Math.max(0, -b));
  const kept = x.dims.map((d, i) => d - cropStart[i] - Math.max(0, -end[i]));
  if (kept.some((k) => k < 0)) return ctx.fail(`pads [${begin},${end}] crop more than the input [${x.dims}] holds`);
  const padStart = begin.map((b) => Math.max(0, b));
  const dims = kept.map((k, i) => k + padStart[i] + Math.max(0, end[i]));
  if (mode !== 'constant' && kept.some((k, i) => k === 0 && dims[i] > 0)) return ctx.fail(`${mode} padding needs a non-empty dim`);
  const st = strides(x.dims);
  const src = indexMap(dims, (c) => {
    let off = 0;
    for (let d = 0; d < dims.length; d++) {
      const j = padSource(c[d] - padStart[d], kept[d], mode);
      if (j < 0) return x.size;
      off += (j + cropStart[d]) * st[d];
    }
    return off;
  });
  return withFill(ctx, x, fill, dims, src);
}

const pad: OpSchema = {
  op: 'Pad',
  attrs: { mode: 'string', pads: 'ints', value: 'float' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    padMode(ctx);
    if (!shape) return ctx.output(0, dtype, undefined);
    let pads: Dim[] | undefined;
    if (ctx.opset < 11) {
      pads = ctx.node.ints('pads');
      if (!pads) return ctx.fail('Pad has no pads attribute');
    } else {
      pads = ctx.symbolic(1);
    }
    const axes = ctx.opset >= 18 && ctx.hasInput(3) ? knownInts(ctx, 3) : undefined;
    if (ctx.opset >= 18 && ctx.hasInput(3) && !axes) return ctx.output(0, dtype, unknownDims(shape.length));
    if (!pads) {
      // Unknown amounts: only the axes that are not padded keep their dims.
      const padded = axes?.map((a) => axisOf(ctx, a, shape.length));
      return ctx.output(
        0,
        dtype,
        shape.map((d, i) => (padded && !padded.includes(i) ? d : null)),
      );
    }
    const [begin, end] = padAmounts(ctx, shape.length, pads, axes);
    const out = shape.map((d, i) => dimAdd(dimAdd(d, begin[i]), end[i]));
    const negative = out.findIndex((d) => typeof d === 'number' && d < 0);
    if (negative >= 0) ctx.fail(`pads crop dim ${negative} below zero`);
    ctx.output(0, dtype, out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const mode = padMode(ctx);
    let pads: number[];
    let fill: Tensor;
    if (ctx.opset < 11) {
      pads = ctx.node.ints('pads') ?? ctx.fail('Pad has no pads attribute');
      fill = fromNumbers(x.dtype, [1], [ctx.node.float('value', 0)]);
    } else {
      pads = intList(ctx.input(1));
      const value = ctx.optional(2);
      // An omitted (or empty) constant_value means the dtype's zero: 0, false or ''.
      fill = value && value.size > 0 ? value : Tensor.zeros(x.dtype, [1]);
    }
    const axesInput = ctx.opset >= 18 ? ctx.optional(3) : undefined;
    const [begin, end] = padAmounts(ctx, x.rank, pads, axesInput && intList(axesInput));
    return [padTensor(ctx, x, begin as number[], end as number[], mode, fill)];
  },
};

// ---------------------------------------------------------------- CenterCropPad

function cropAxes(ctx: Ctx, rank: number): number[] {
  const axes = ctx.node.ints('axes');
  const ax = axes ? axes.map((a) => axisOf(ctx, a, rank)) : Array.from({ length: rank }, (_, i) => i);
  if (new Set(ax).size !== ax.length) ctx.fail(`CenterCropPad axes [${axes}] repeat`);
  return ax;
}

const centerCropPad: OpSchema = {
  op: 'CenterCropPad',
  attrs: { axes: 'ints' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const target = ctx.symbolic(1);
    if (!shape) {
      const len = ctx.shape(1)?.[0];
      const full = !ctx.node.ints('axes') && typeof len === 'number';
      return ctx.output(0, dtype, full ? unknownDims(len) : undefined);
    }
    const axes = cropAxes(ctx, shape.length);
    if (target && target.length !== axes.length) ctx.fail(`shape has ${target.length} entries for ${axes.length} axes`);
    const out = [...shape];
    axes.forEach((a, i) => {
      out[a] = target ? target[i] : null;
    });
    ctx.output(0, dtype, out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const target = intList(ctx.input(1));
    const axes = cropAxes(ctx, x.rank);
    if (target.length !== axes.length) return ctx.fail(`shape has ${target.length} entries for ${axes.length} axes`);
    const dims = [...x.dims];
    axes.forEach((a, i) => {
      dims[a] = target[i];
    });
    if (dims.some((d) => d < 0)) return ctx.fail(`shape [${target}] has a negative size`);
    // Centred: a crop starts floor((in − out) / 2) into the input; a pad puts the input
    // floor((out − in) / 2) into the output, the odd element at the end either way.
    const shift = x.dims.map((d, i) => (d >= dims[i] ? Math.floor((d - dims[i]) / 2) : -Math.floor((dims[i] - d) / 2)));
    const st = strides(x.dims);
    const src = indexMap(dims, (c) => {
      let off = 0;
      for (let d = 0; d < dims.length; d++) {
        const j = c[d] + shift[d];
        if (j < 0 || j >= x.dims[d]) return x.size;
        off += j * st[d];
      }
      return off;
    });
    return [withFill(ctx, x, Tensor.zeros(x.dtype, [1]), dims, src)];
  },
};

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

// ---------------------------------------------------------------- DepthToSpace, SpaceToDepth

function blocksizeOf(ctx: Ctx): number {
  const b = ctx.node.int('blocksize');
  if (b === undefined || b < 1) return ctx.fail('blocksize must be a positive integer');
  return b;
}

/** DCR (default) or CRD channel order; opset 11 added the attribute. */
function depthMode(ctx: Ctx): 'DCR' | 'CRD' {
  const mode = ctx.opset >= 11 ? ctx.node.str('mode', 'DCR') : 'DCR';
  if (mode !== 'DCR' && mode !== 'CRD') return ctx.fail(`unknown DepthToSpace mode "${mode}"`);
  return mode;
}

/** Input shape of the NCHW block ops: rank 4, or rank-4 unknown. */
function nchwShape(ctx: InferContext): Shape | undefined {
  const shape = ctx.shape(0);
  if (shape && shape.length !== 4) ctx.fail(`${ctx.node.opType} needs a rank-4 input, got rank ${shape.length}`);
  return shape;
}

const depthToSpace: OpSchema = {
  op: 'DepthToSpace',
  attrs: { blocksize: 'int', mode: 'string' },
  infer(ctx) {
    const b = blocksizeOf(ctx);
    depthMode(ctx);
    const shape = nchwShape(ctx);
    if (!shape) return ctx.output(0, ctx.dtype(0), unknownDims(4));
    const [n, c, h, w] = shape;
    if (typeof c === 'number' && c % (b * b) !== 0) ctx.fail(`${c} channels do not divide by blocksize² = ${b * b}`);
    ctx.output(0, ctx.dtype(0), [n, dimDiv(c, b * b), dimMul(h, b), dimMul(w, b)]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const b = blocksizeOf(ctx);
    const dcr = depthMode(ctx) === 'DCR';
    if (x.rank !== 4) return ctx.fail(`DepthToSpace needs a rank-4 input, got rank ${x.rank}`);
    const [n, c, h, w] = x.dims;
    if (c % (b * b) !== 0) return ctx.fail(`${c} channels do not divide by blocksize² = ${b * b}`);
    const oc = c / (b * b);
    const dims = [n, oc, h * b, w * b];
    // Output (n, k, y, x) takes block offset (i, j) = (y mod b, x mod b) from channel
    // (i·b + j)·oc + k in DCR order, k·b² + i·b + j in CRD order.
    const src = indexMap(dims, ([bn, k, y, xx]) => {
      const i = y % b;
      const j = xx % b;
      const ch = dcr ? (i * b + j) * oc + k : k * b * b + i * b + j;
      return ((bn * c + ch) * h + Math.floor(y / b)) * w + Math.floor(xx / b);
    });
    return [takeElements(x, dims, src)];
  },
};

const spaceToDepth: OpSchema = {
  op: 'SpaceToDepth',
  attrs: { blocksize: 'int' },
  infer(ctx) {
    const b = blocksizeOf(ctx);
    const shape = nchwShape(ctx);
    if (!shape) return ctx.output(0, ctx.dtype(0), unknownDims(4));
    const [n, c, h, w] = shape;
    for (const d of [h, w]) if (typeof d === 'number' && d % b !== 0) ctx.fail(`spatial dim ${d} does not divide by blocksize ${b}`);
    ctx.output(0, ctx.dtype(0), [n, dimMul(c, b * b), dimDiv(h, b), dimDiv(w, b)]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const b = blocksizeOf(ctx);
    if (x.rank !== 4) return ctx.fail(`SpaceToDepth needs a rank-4 input, got rank ${x.rank}`);
    const [n, c, h, w] = x.dims;
    if (h % b !== 0 || w % b !== 0) return ctx.fail(`spatial dims ${h}×${w} do not divide by blocksize ${b}`);
    const dims = [n, c * b * b, h / b, w / b];
    // Output channel (i·b + j)·c + k holds block offset (i, j) of input channel k (DCR order).
    const src = indexMap(dims, ([bn, och, y, xx]) => {
      const block = Math.floor(och / c);
      const k = och % c;
      const i = Math.floor(block / b);
      const j = block % b;
      return ((bn * c + k) * h + y * b + i) * w + xx * b + j;
    });
    return [takeElements(x, dims, src)];
  },
};

// ---------------------------------------------------------------- OneHot

/** OneHot's depth when known: an integer shape value, or a constant of any numeric type. */
function depthDim(ctx: InferContext): Dim {
  const s = ctx.symbolic(1);
  if (s?.length === 1) return s[0];
  const c = ctx.constant(1);
  return c?.size === 1 ? Math.trunc(c.scalarValue()) : null;
}

const oneHot: OpSchema = {
  op: 'OneHot',
  attrs: { axis: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(2);
    const indices = ctx.shape(0);
    const values = ctx.shape(2);
    if (values?.every((d) => typeof d === 'number') && dimProduct(values) !== 2) ctx.fail('values must hold [off, on]');
    const depth = depthDim(ctx);
    if (typeof depth === 'number' && depth < 0) ctx.fail(`depth ${depth} is negative`);
    if (!indices) return ctx.output(0, dtype, undefined);
    const axis = axisOf(ctx, ctx.node.int('axis', -1), indices.length + 1);
    ctx.output(0, dtype, [...indices.slice(0, axis), depth, ...indices.slice(axis)]);
  },
  kernel(ctx) {
    const ind = ctx.input(0);
    const depth = Math.trunc(numbers(ctx.input(1))[0]);
    const values = ctx.input(2);
    if (values.size !== 2) return ctx.fail('values must hold [off, on]');
    if (!(depth >= 0)) return ctx.fail(`depth ${depth} is not a non-negative integer`);
    const axis = axisOf(ctx, ctx.node.int('axis', -1), ind.rank + 1);
    const dims = [...ind.dims.slice(0, axis), depth, ...ind.dims.slice(axis)];
    const iv = numbers(ind);
    const ist = strides(ind.dims);
    // Negative indices count from the end since opset 11; before, like any index outside
    // [0, depth), they give a row of off values.
    const wrap = ctx.opset >= 11;
    const src = indexMap(dims, (c) => {
      let off = 0;
      for (let d = 0, k = 0; d < c.length; d++) if (d !== axis) off += c[d] * ist[k++];
      let v = Math.trunc(iv[off]);
      if (v < 0 && wrap) v += depth;
      return v === c[axis] ? 1 : 0;
    });
    return [takeElements(values.reshape([2]), dims, src)];
  },
};

// ---------------------------------------------------------------- NonZero, Compress

function nonZeroCoords(x: Tensor): { count: number; coords: number[] } {
  const flags = nonZeroFlags(x);
  const st = strides(x.dims);
  const positions: number[] = [];
  flags.forEach((f, i) => {
    if (f) positions.push(i);
  });
  // Output is [rank, count]: row d holds the d-th coordinate of every non-zero, in row-major order.
  const coords: number[] = [];
  for (let d = 0; d < x.rank; d++) for (const p of positions) coords.push(Math.floor(p / st[d]) % x.dims[d]);
  return { count: positions.length, coords };
}

const nonZero: OpSchema = {
  op: 'NonZero',
  attrs: {},
  infer(ctx) {
    const c = ctx.constant(0);
    const count = c ? nonZeroCoords(c).count : ctx.freshDim('nonzero');
    ctx.output(0, 'int64', [ctx.rank(0) ?? null, count]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const { count, coords } = nonZeroCoords(x);
    return [fromNumbers('int64', [x.rank, count], coords)];
  },
};

/** Positions picked by a Compress condition along a dim of `limit` entries (a shorter condition drops the rest). */
function compressed(condition: Tensor, limit: number): number[] {
  const flags = nonZeroFlags(condition);
  const picked: number[] = [];
  for (let i = 0; i < Math.min(flags.length, limit); i++) if (flags[i]) picked.push(i);
  return picked;
}

const compress: OpSchema = {
  op: 'Compress',
  attrs: { axis: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const condRank = ctx.rank(1);
    if (condRank !== undefined && condRank !== 1) ctx.fail(`condition must be 1-D, got rank ${condRank}`);
    const axisAttr = ctx.node.int('axis');
    const axis = axisAttr !== undefined && shape ? axisOf(ctx, axisAttr, shape.length) : undefined;
    const limit = shape ? (axis === undefined ? dimProduct(shape) : shape[axis]) : null;
    const cond = ctx.constant(1);
    const count = cond ? compressed(cond, typeof limit === 'number' ? limit : Infinity).length : ctx.freshDim('compress');
    // Without an axis the input is flattened first.
    if (axisAttr === undefined) return ctx.output(0, dtype, [count]);
    if (!shape || axis === undefined) return ctx.output(0, dtype, undefined);
    const out = [...shape];
    out[axis] = count;
    ctx.output(0, dtype, out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const cond = ctx.input(1);
    if (cond.rank !== 1) return ctx.fail(`condition must be 1-D, got rank ${cond.rank}`);
    const axisAttr = ctx.node.int('axis');
    if (axisAttr === undefined) {
      const picked = compressed(cond, x.size);
      return [takeElements(x, [picked.length], picked)];
    }
    const axis = axisOf(ctx, axisAttr, x.rank);
    const picked = compressed(cond, x.dims[axis]);
    const dims = [...x.dims];
    dims[axis] = picked.length;
    const st = strides(x.dims);
    return [
      takeElements(
        x,
        dims,
        indexMap(dims, (c) => offsetWith(c, st, axis, picked[c[axis]])),
      ),
    ];
  },
};

// ---------------------------------------------------------------- Trilu, EyeLike

const trilu: OpSchema = {
  op: 'Trilu',
  attrs: { upper: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (shape && shape.length < 2) ctx.fail(`Trilu needs rank ≥ 2, got rank ${shape.length}`);
    ctx.output(0, ctx.dtype(0), shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank < 2) return ctx.fail(`Trilu needs rank ≥ 2, got rank ${x.rank}`);
    const kInput = ctx.optional(1);
    const k = kInput ? numbers(kInput)[0] : 0;
    const upper = ctx.node.int('upper', 1) !== 0;
    const r = x.rank;
    // Upper keeps j − i ≥ k, lower keeps j − i ≤ k, over the last two dims (i, j).
    const src = indexMap(x.dims, (c, flat) => {
      const diag = c[r - 1] - c[r - 2];
      return (upper ? diag >= k : diag <= k) ? flat : x.size;
    });
    return [withFill(ctx, x, Tensor.zeros(x.dtype, [1]), x.dims, src)];
  },
};

function eyeDtype(ctx: Ctx, input: DType | undefined): DType | undefined {
  const code = ctx.node.int('dtype');
  if (code === undefined) return input;
  const d = dtypeFromCode(code);
  if (!d) return ctx.fail(`dtype ${code} is not a tensor element type`);
  return d;
}

const eyeLike: OpSchema = {
  op: 'EyeLike',
  attrs: { dtype: 'int', k: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (shape && shape.length !== 2) ctx.fail(`EyeLike needs a 2-D input, got rank ${shape.length}`);
    ctx.output(0, eyeDtype(ctx, ctx.dtype(0)), shape ?? unknownDims(2));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank !== 2) return ctx.fail(`EyeLike needs a 2-D input, got rank ${x.rank}`);
    const dtype = eyeDtype(ctx, x.dtype) ?? x.dtype;
    if (dtype === 'string') return ctx.fail('EyeLike cannot make string tensors');
    const k = ctx.node.int('k', 0);
    const cols = x.dims[1];
    const ones = Uint8Array.from({ length: x.size }, (_, i) => ((i % cols) - Math.floor(i / cols) === k ? 1 : 0));
    return [fromNumbers(dtype, x.dims, ones)];
  },
};

// ---------------------------------------------------------------- Unique

interface UniqueSlices {
  /** First occurrence of each unique slice, in output order. */
  first: number[];
  /** For every input slice, the output position of its value. */
  inverse: number[];
  counts: number[];
}

/**
 * Groups the slices of `x` along `axis` (every element when flattened) into unique values. The
 * sorted order is numpy's: slices compare element by element in row-major order. Unsorted
 * output keeps the order of first occurrence.
 */
function uniqueSlices(x: Tensor, axis: number | undefined, sorted: boolean): UniqueSlices {
  const [outer, count, inner] = axis === undefined ? [1, x.size, 1] : aroundAxis(x.dims, axis);
  const order = elementOrder(x);
  const compare = (a: number, b: number): number => {
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) {
        const c = order((o * count + a) * inner + r, (o * count + b) * inner + r);
        if (c !== 0) return c;
      }
    }
    return 0;
  };
  // Equal slices sort by position, so each group starts at its first occurrence.
  const perm = Array.from({ length: count }, (_, i) => i).sort((a, b) => compare(a, b) || a - b);
  const groupOf = new Array<number>(count);
  const first: number[] = [];
  const counts: number[] = [];
  perm.forEach((s, i) => {
    if (i === 0 || compare(perm[i - 1], s) !== 0) {
      first.push(s);
      counts.push(0);
    }
    groupOf[s] = first.length - 1;
    counts[first.length - 1]++;
  });
  if (sorted) return { first, inverse: groupOf, counts };
  const byFirst = first.map((_, g) => g).sort((a, b) => first[a] - first[b]);
  const position = new Array<number>(byFirst.length);
  byFirst.forEach((g, p) => {
    position[g] = p;
  });
  return {
    first: byFirst.map((g) => first[g]),
    inverse: groupOf.map((g) => position[g]),
    counts: byFirst.map((g) => counts[g]),
  };
}

const unique: OpSchema = {
  op: 'Unique',
  attrs: { axis: 'int', sorted: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const axisAttr = ctx.node.int('axis');
    const axis = axisAttr !== undefined && shape ? axisOf(ctx, axisAttr, shape.length) : undefined;
    const c = ctx.constant(0);
    const count: Dim = c ? uniqueSlices(c, axis, true).first.length : ctx.freshDim('unique');
    let y: Shape | undefined;
    let inverse: Dim;
    if (axisAttr === undefined) {
      y = [count];
      inverse = shape ? dimProduct(shape) : null;
    } else if (shape && axis !== undefined) {
      y = [...shape];
      y[axis] = count;
      inverse = shape[axis];
    } else {
      y = undefined;
      inverse = null;
    }
    ctx.output(0, dtype, y);
    ctx.output(1, 'int64', [count]);
    ctx.output(2, 'int64', [inverse]);
    ctx.output(3, 'int64', [count]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axisAttr = ctx.node.int('axis');
    const axis = axisAttr === undefined ? undefined : axisOf(ctx, axisAttr, x.rank);
    const { first, inverse, counts } = uniqueSlices(x, axis, ctx.node.int('sorted', 1) !== 0);
    let y: Tensor;
    if (axis === undefined) {
      y = takeElements(x, [first.length], first);
    } else {
      const dims = [...x.dims];
      dims[axis] = first.length;
      const st = strides(x.dims);
      y = takeElements(
        x,
        dims,
        indexMap(dims, (c) => offsetWith(c, st, axis, first[c[axis]])),
      );
    }
    return [
      y,
      fromNumbers('int64', [first.length], first),
      fromNumbers('int64', [inverse.length], inverse),
      fromNumbers('int64', [counts.length], counts),
    ];
  },
};

// ---------------------------------------------------------------- TopK

/** K from the attribute (before opset 10) or the one-element input. */
function topKCount(ctx: InferContext): Dim {
  if (ctx.opset < 10) return ctx.node.int('k') ?? ctx.fail('TopK has no k attribute');
  const s = ctx.symbolic(1);
  if (s && s.length !== 1) ctx.fail(`K must hold one element, got ${s.length}`);
  return s ? s[0] : null;
}

const topK: OpSchema = {
  op: 'TopK',
  attrs: { axis: 'int', k: 'int', largest: 'int', sorted: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    const k = topKCount(ctx);
    if (typeof k === 'number' && k < 0) ctx.fail(`K is ${k}`);
    if (!shape) {
      ctx.output(0, dtype, undefined);
      ctx.output(1, 'int64', undefined);
      return;
    }
    const axis = axisOf(ctx, ctx.node.int('axis', -1), shape.length);
    const dim = shape[axis];
    if (typeof k === 'number' && typeof dim === 'number' && k > dim) ctx.fail(`K = ${k} exceeds the axis length ${dim}`);
    const out = [...shape];
    out[axis] = k;
    ctx.output(0, dtype, out);
    ctx.output(1, 'int64', out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const k = ctx.opset < 10 ? ctx.node.int('k', 0) : numbers(ctx.input(1))[0];
    const axis = axisOf(ctx, ctx.node.int('axis', -1), x.rank);
    const [outer, len, inner] = aroundAxis(x.dims, axis);
    if (!(k >= 0 && k <= len)) return ctx.fail(`K = ${k} is out of range for an axis of length ${len}`);
    const largest = ctx.node.int('largest', 1) !== 0;
    const v = numbers(x);
    // Equal values keep index order (lower index first) in both directions; NaN counts as the largest.
    const before = (a: number, b: number): number => (largest ? compareNumbers(v[b], v[a]) : compareNumbers(v[a], v[b])) || a - b;
    const dims = [...x.dims];
    dims[axis] = k;
    const src = new Int32Array(shapeSize(dims));
    const picked = new Float64Array(src.length);
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) {
        const line = Array.from({ length: len }, (_, i) => (o * len + i) * inner + r).sort(before);
        for (let j = 0; j < k; j++) {
          const at = (o * k + j) * inner + r;
          src[at] = line[j];
          picked[at] = (line[j] - o * len * inner - r) / inner;
        }
      }
    }
    // With sorted = 0 the order is unspecified; the sorted order is a valid one.
    return [takeElements(x, dims, src), fromNumbers('int64', dims, picked)];
  },
};

// ---------------------------------------------------------------- ReverseSequence

function sequenceAxes(ctx: Ctx, rank: number | undefined): [number, number] {
  const batch = ctx.node.int('batch_axis', 1);
  const time = ctx.node.int('time_axis', 0);
  if (batch !== 0 && batch !== 1) ctx.fail(`batch_axis must be 0 or 1, got ${batch}`);
  if (time !== 0 && time !== 1) ctx.fail(`time_axis must be 0 or 1, got ${time}`);
  if (batch === time) ctx.fail('batch_axis and time_axis are the same axis');
  if (rank !== undefined && rank < 2) ctx.fail(`ReverseSequence needs rank ≥ 2, got rank ${rank}`);
  return [batch, time];
}

const reverseSequence: OpSchema = {
  op: 'ReverseSequence',
  attrs: { batch_axis: 'int', time_axis: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    const [batch] = sequenceAxes(ctx, shape?.length);
    checkSameShape(ctx, 'sequence_lens', ctx.shape(1), shape ? [shape[batch]] : undefined);
    ctx.output(0, ctx.dtype(0), shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const lens = numbers(ctx.input(1));
    const [batch, time] = sequenceAxes(ctx, x.rank);
    if (lens.length !== x.dims[batch]) return ctx.fail(`sequence_lens has ${lens.length} entries for a batch of ${x.dims[batch]}`);
    for (const l of Array.from(lens)) if (l < 0 || l > x.dims[time]) return ctx.fail(`sequence length ${l} is out of range`);
    const st = strides(x.dims);
    // The first len steps of each batch entry are reversed; the rest stay in place.
    const src = indexMap(x.dims, (c) => {
      const len = lens[c[batch]];
      const t = c[time];
      return offsetWith(c, st, time, t < len ? len - 1 - t : t);
    });
    return [takeElements(x, x.dims, src)];
  },
};

// ---------------------------------------------------------------- CumSum

const cumSum: OpSchema = {
  op: 'CumSum',
  attrs: { exclusive: 'int', reverse: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    const axisRank = ctx.rank(1);
    if (axisRank !== undefined && axisRank > 1) ctx.fail(`axis must be a scalar, got rank ${axisRank}`);
    const axis = ctx.constant(1);
    if (shape && axis?.size === 1) axisOf(ctx, axis.scalarValue(), shape.length);
    ctx.output(0, ctx.dtype(0), shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const axis = axisOf(ctx, numbers(ctx.input(1))[0], x.rank);
    const exclusive = ctx.node.int('exclusive', 0) !== 0;
    const reverse = ctx.node.int('reverse', 0) !== 0;
    const [outer, len, inner] = aroundAxis(x.dims, axis);
    const v = numbers(x);
    const out = new Float64Array(x.size);
    // float32 sums round after every addition, as a float32 loop would.
    const round = x.dtype === 'float32' ? Math.fround : (s: number) => s;
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) {
        let acc = 0;
        for (let s = 0; s < len; s++) {
          const i = (o * len + (reverse ? len - 1 - s : s)) * inner + r;
          if (exclusive) out[i] = acc;
          acc = round(acc + v[i]);
          if (!exclusive) out[i] = acc;
        }
      }
    }
    return [fromNumbers(x.dtype, x.dims, out)];
  },
};

export const DATA_OPS: OpSchema[] = [
  split,
  tile,
  pad,
  centerCropPad,
  gatherElements,
  gatherND,
  scatterElements,
  scatter,
  scatterND,
  depthToSpace,
  spaceToDepth,
  oneHot,
  nonZero,
  compress,
  trilu,
  eyeLike,
  unique,
  topK,
  reverseSequence,
  cumSum,
];
