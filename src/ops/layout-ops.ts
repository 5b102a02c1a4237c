/**
 * Operators that move a tensor's elements into a new arrangement: Split, Tile, Pad (constant,
 * reflect, edge, wrap; negative pads crop), CenterCropPad, DepthToSpace and SpaceToDepth. Kernels
 * build an index map and copy through `takeElements`, so they work for every dtype (strings,
 * int64 and 4-bit types included); padding appends the fill value as one extra element.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { dimAdd, dimDiv, dimMul } from '../ir/dims.js';
import type { Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import { fromOutput0, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, fromNumbers, indexMap, nullDims, numbers, offsetWith, strides, takeElements, withFill } from './util.js';

type Ctx = InferContext | KernelContext | GradContext;

// ---------------------------------------------------------------- helpers

/** Input i's elements when every one is a known number (constant, or shape values already fixed). */
function knownInts(ctx: InferContext, i: number): number[] | undefined {
  const s = ctx.symbolic(i);
  return s?.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
}

/** The elements of an integer tensor as a plain array. */
function intList(t: Tensor): number[] {
  return Array.from(numbers(t));
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

// ---------------------------------------------------------------- Split

/**
 * Sizes of Split's outputs along the axis. `explicit` is the split list (attribute before opset
 * 13, input since), null when given but unknown, undefined when absent (equal parts).
 */
function splitSizes(ctx: Ctx, dim: Dim, count: number, explicit: readonly Dim[] | null | undefined): Dim[] {
  if (count < 1) return ctx.fail('Split has no outputs');
  if (explicit === null) return nullDims(count);
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
    if (!repeats) return ctx.output(0, dtype, nullDims(shape.length));
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
    if (ctx.opset >= 18 && ctx.hasInput(3) && !axes) return ctx.output(0, dtype, nullDims(shape.length));
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
      return ctx.output(0, dtype, full ? nullDims(len) : undefined);
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
    if (!shape) return ctx.output(0, ctx.dtype(0), nullDims(4));
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
    if (!shape) return ctx.output(0, ctx.dtype(0), nullDims(4));
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

// ---------------------------------------------------------------- gradients

/** A constant int input's elements (pads, repeats, axes). */
function constInput(c: GradContext, i: number): number[] | undefined {
  const v = c.optionalInput(i);
  if (!v) return undefined;
  const t = c.constant(v);
  return t ? intList(t) : c.fail(`input ${i} must be constant`);
}

const layoutGrads: Record<string, GradRule> = {
  // The outputs' gradients concatenated back; an output without one contributes zeros.
  Split: (c) => {
    if (!c.needs(0)) return;
    const rank = c.shape(c.input(0)).length;
    const axis = axisOf(c, c.node.int('axis', 0), rank);
    const parts = c.node.outputs.map((o, i) => c.grad(i) ?? c.zerosLike(o as Value));
    c.setGrad(0, parts.length === 1 ? parts[0] : c.op('Concat', parts, { axis }));
  },
  // Constant padding: the gradient is dY with the pads cut off (negative pads crop).
  Pad: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    if (padMode(c) !== 'constant') c.fail(`the gradient of ${padMode(c)} padding is not supported`);
    const rank = c.shape(c.input(0)).length;
    const [begin, end] = padAmounts(c, rank, constInput(c, 1) ?? [], constInput(c, 3));
    c.setGrad(0, c.op('Pad', [dy, c.ints([...begin, ...end].map((p) => -(p as number)))]));
  }),
  // dY viewed as [r0, d0, r1, d1, …] and summed over the repeats.
  Tile: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const dims = c.staticShape(c.input(0), 'the gradient of Tile');
    const repeats = constInput(c, 1) ?? c.fail('repeats must be given');
    const split = c.op('Reshape', [dy, c.ints(dims.flatMap((d, i) => [repeats[i], d]))]);
    c.setGrad(
      0,
      c.reduce(
        'ReduceSum',
        split,
        dims.map((_, i) => 2 * i),
        false,
      ),
    );
  }),
  // SpaceToDepth undoes DepthToSpace in DCR order, and the other way round.
  DepthToSpace: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    if (depthMode(c) !== 'DCR') c.fail('the gradient of DepthToSpace in CRD mode is not supported');
    c.setGrad(0, c.op('SpaceToDepth', [dy], { blocksize: blocksizeOf(c) }));
  }),
  SpaceToDepth: fromOutput0((c, dy) => {
    if (c.needs(0)) c.setGrad(0, c.op('DepthToSpace', [dy], { blocksize: blocksizeOf(c) }));
  }),
};

export const LAYOUT_OPS: OpSchema[] = withGradients([split, tile, pad, centerCropPad, depthToSpace, spaceToDepth], layoutGrads);
