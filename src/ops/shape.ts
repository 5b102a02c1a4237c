/**
 * The shape-manipulating core that constant folding and data propagation rest on: Identity,
 * Constant, Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Gather, Slice,
 * Expand, ConstantOfShape, Range. Rules propagate symbolic shape values (Shape → Gather → Concat)
 * so exporters' shape subgraphs keep `N` symbolic and fold once `--input-shape` fixes it.
 */
import { broadcastShapes, dimAdd, dimDiv, dimEquals, dimProduct, normAxis } from '../ir/dims.js';
import type { Value } from '../ir/graph.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import { constantNodeValue } from './constants.js';
import { fromOutput0, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, broadcastIndices, fromNumbers, numbers, stridedIndices, strides, takeElements, unknownDims } from './util.js';

const INT64_MAX = 2 ** 63;

/** Axes from the attribute (older opsets) or from input `index` (newer ones). */
function axesOf(ctx: InferContext, index: number, sinceOpset: number): number[] | undefined | 'unknown' {
  if (ctx.opset < sinceOpset) return ctx.node.ints('axes');
  if (!ctx.hasInput(index)) return undefined;
  const s = ctx.symbolic(index);
  if (!s || s.some((d) => typeof d !== 'number')) return 'unknown';
  return s as number[];
}

function kernelAxes(ctx: KernelContext, index: number, sinceOpset: number): number[] | undefined {
  if (ctx.opset < sinceOpset) return ctx.node.ints('axes');
  const t = ctx.optional(index);
  return t ? Array.from(numbers(t)) : undefined;
}

// ---------------------------------------------------------------- Reshape

/** Output dims of Reshape given the requested shape (entries may be 0, -1 or symbols). */
function reshapeDims(
  ctx: InferContext | KernelContext,
  input: readonly Dim[] | undefined,
  target: readonly Dim[],
  allowZero: boolean,
): Shape {
  const out: Shape = target.map((d, i) => {
    if (d === 0 && !allowZero) return input && i < input.length ? input[i] : null;
    return d;
  });
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    if (out.filter((d) => d === -1).length > 1) return ctx.fail('Reshape target has more than one -1');
    const others = out.filter((_, i) => i !== minus);
    out[minus] = input ? dimDiv(dimProduct(input), dimProduct(others)) : null;
  }
  return out;
}

const reshape: OpSchema = {
  op: 'Reshape',
  attrs: { allowzero: 'int', shape: 'ints' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const target = ctx.opset < 5 ? ctx.node.ints('shape') : ctx.symbolic(1);
    if (!target) {
      const len = ctx.shape(1)?.[0];
      ctx.output(0, dtype, unknownDims(ctx, len));
      return;
    }
    const out = reshapeDims(ctx, ctx.shape(0), target, ctx.node.int('allowzero', 0) === 1);
    const inShape = ctx.shape(0);
    if (inShape && out.every((d) => typeof d === 'number') && inShape.every((d) => typeof d === 'number')) {
      if (shapeSize(out as number[]) !== shapeSize(inShape as number[])) {
        ctx.fail(`cannot reshape [${inShape.join(',')}] (${shapeSize(inShape as number[])} elements) to [${out.join(',')}]`);
      }
    }
    ctx.output(0, dtype, out);
    const s = ctx.symbolic(0);
    if (s && out.length <= 1) ctx.outputSymbolic(0, s);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const target = ctx.opset < 5 ? (ctx.node.ints('shape') ?? []) : Array.from(numbers(ctx.input(1)));
    const dims = reshapeDims(ctx, x.dims, target, ctx.node.int('allowzero', 0) === 1);
    if (!dims.every((d) => typeof d === 'number' && d >= 0)) return ctx.fail(`cannot reshape [${x.dims}] to [${target}]`);
    return [x.reshape(dims as number[])];
  },
};

// ---------------------------------------------------------------- Squeeze / Unsqueeze / Flatten

function squeezeShape(ctx: InferContext | KernelContext, shape: readonly Dim[], axes: number[] | undefined): Shape | undefined {
  if (!axes) {
    if (shape.some((d) => typeof d !== 'number')) return undefined;
    return shape.filter((d) => d !== 1);
  }
  const norm = axes.map((a) => axisOf(ctx, a, shape.length));
  for (const a of norm) {
    if (typeof shape[a] === 'number' && shape[a] !== 1) ctx.fail(`cannot squeeze axis ${a} of size ${shape[a]}`);
  }
  return shape.filter((_, i) => !norm.includes(i));
}

function unsqueezeShape(ctx: InferContext | KernelContext, shape: readonly Dim[], axes: number[]): Shape {
  const rank = shape.length + axes.length;
  const norm = axes.map((a) => axisOf(ctx, a, rank));
  if (new Set(norm).size !== norm.length) ctx.fail('Unsqueeze axes repeat');
  const out: Shape = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : shape[k++]);
  return out;
}

const squeeze: OpSchema = {
  op: 'Squeeze',
  attrs: { axes: 'ints' },
  infer(ctx) {
    const shape = ctx.shape(0);
    const axes = axesOf(ctx, 1, 13);
    if (!shape || axes === 'unknown') return ctx.output(0, ctx.dtype(0), undefined);
    ctx.output(0, ctx.dtype(0), squeezeShape(ctx, shape, axes));
    const s = ctx.symbolic(0);
    if (s) ctx.outputSymbolic(0, s);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    return [x.reshape(squeezeShape(ctx, x.dims, kernelAxes(ctx, 1, 13)) as number[])];
  },
};

const unsqueeze: OpSchema = {
  op: 'Unsqueeze',
  attrs: { axes: 'ints' },
  infer(ctx) {
    const shape = ctx.shape(0);
    const axes = axesOf(ctx, 1, 13);
    if (!shape || axes === 'unknown' || !axes) return ctx.output(0, ctx.dtype(0), undefined);
    ctx.output(0, ctx.dtype(0), unsqueezeShape(ctx, shape, axes));
    const s = ctx.symbolic(0);
    if (s) ctx.outputSymbolic(0, s);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    return [x.reshape(unsqueezeShape(ctx, x.dims, kernelAxes(ctx, 1, 13) ?? []) as number[])];
  },
};

function flattenShape(ctx: InferContext | KernelContext, shape: readonly Dim[]): Shape {
  const axis = ctx.node.int('axis', 1);
  const a = axis < 0 ? axis + shape.length : axis;
  if (a < 0 || a > shape.length) return ctx.fail(`Flatten axis ${axis} is out of range for rank ${shape.length}`);
  return [dimProduct(shape.slice(0, a)), dimProduct(shape.slice(a))];
}

const flatten: OpSchema = {
  op: 'Flatten',
  attrs: { axis: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    ctx.output(0, ctx.dtype(0), shape ? flattenShape(ctx, shape) : [null, null]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    return [x.reshape(flattenShape(ctx, x.dims) as number[])];
  },
};

// ---------------------------------------------------------------- Transpose

function permOf(ctx: InferContext | KernelContext, rank: number): number[] {
  const perm = ctx.node.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    return ctx.fail(`perm [${perm}] is not a permutation of ${rank} axes`);
  }
  return perm;
}

export function transposeTensor(x: Tensor, perm: readonly number[]): Tensor {
  const inStrides = strides(x.dims);
  const dims = perm.map((p) => x.dims[p]);
  return takeElements(
    x,
    dims,
    stridedIndices(
      dims,
      perm.map((p) => inStrides[p]),
    ),
  );
}

const transpose: OpSchema = {
  op: 'Transpose',
  attrs: { perm: 'ints' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, ctx.dtype(0), undefined);
    ctx.output(
      0,
      ctx.dtype(0),
      permOf(ctx, shape.length).map((p) => shape[p]),
    );
  },
  kernel(ctx) {
    const x = ctx.input(0);
    return [transposeTensor(x, permOf(ctx, x.rank))];
  },
};

// ---------------------------------------------------------------- Concat

const concat: OpSchema = {
  op: 'Concat',
  attrs: { axis: 'int' },
  infer(ctx) {
    const shapes: Shape[] = [];
    let dtype = ctx.dtype(0);
    for (let i = 0; i < ctx.numInputs; i++) {
      dtype ??= ctx.dtype(i);
      const s = ctx.shape(i);
      if (!s) return ctx.output(0, dtype, ctx.rank(0) !== undefined ? new Array<Dim>(ctx.rank(0) as number).fill(null) : undefined);
      shapes.push(s);
    }
    const rank = shapes[0].length;
    if (shapes.some((s) => s.length !== rank)) ctx.fail('Concat inputs differ in rank');
    const axis = axisOf(ctx, ctx.node.int('axis', rank === 1 ? 0 : 1), rank);
    const out: Shape = [...shapes[0]];
    out[axis] = shapes.slice(1).reduce<Dim>((acc, s) => dimAdd(acc, s[axis]), shapes[0][axis]);
    for (let d = 0; d < rank; d++) {
      if (d === axis) continue;
      for (const s of shapes) {
        if (typeof out[d] === 'number' && typeof s[d] === 'number' && out[d] !== s[d]) ctx.fail(`Concat inputs differ in dim ${d}`);
        if (out[d] === null || (typeof out[d] === 'string' && typeof s[d] === 'number')) out[d] = s[d];
      }
    }
    ctx.output(0, dtype, out);
    if (rank === 1) {
      const parts: Dim[] = [];
      for (let i = 0; i < ctx.numInputs; i++) {
        const s = ctx.symbolic(i);
        if (!s) return;
        parts.push(...s);
      }
      ctx.outputSymbolic(0, parts);
    }
  },
  kernel(ctx) {
    const inputs: Tensor[] = [];
    for (let i = 0; i < ctx.numInputs; i++) inputs.push(ctx.input(i));
    const rank = inputs[0].rank;
    const axis = axisOf(ctx, ctx.node.int('axis', 0), rank);
    const dims = [...inputs[0].dims];
    dims[axis] = inputs.reduce((a, t) => a + t.dims[axis], 0);
    // For each outer slice, each input contributes its next block of rows.
    const outer = shapeSize(dims.slice(0, axis));
    const inner = shapeSize(dims.slice(axis + 1));
    const pieces: Array<{ t: Tensor; index: number }> = [];
    for (let o = 0; o < outer; o++) {
      for (const t of inputs) {
        const rows = t.dims[axis] * inner;
        for (let r = 0; r < rows; r++) pieces.push({ t, index: o * rows + r });
      }
    }
    return [mergeTensors(inputs, dims, pieces)];
  },
};

/** Copies elements picked from several same-dtype tensors into one tensor. */
function mergeTensors(inputs: Tensor[], dims: number[], pieces: Array<{ t: Tensor; index: number }>): Tensor {
  const dtype = inputs[0].dtype;
  if (inputs.some((t) => t.dtype !== dtype)) throw new Error('Concat inputs differ in dtype');
  if (dtype === 'string')
    return Tensor.fromStrings(
      dims,
      pieces.map((p) => p.t.stringBytes[p.index]),
    );
  const first = inputs[0].data;
  const Ctor = first.constructor as new (n: number) => typeof first;
  const out = new Ctor(pieces.length);
  pieces.forEach((p, i) => {
    out[i] = p.t.data[p.index];
  });
  return Tensor.from(dtype, dims, out);
}

// ---------------------------------------------------------------- Gather

const gather: OpSchema = {
  op: 'Gather',
  attrs: { axis: 'int' },
  infer(ctx) {
    const data = ctx.shape(0);
    const indices = ctx.shape(1);
    if (!data || !indices) return ctx.output(0, ctx.dtype(0), undefined);
    const axis = axisOf(ctx, ctx.node.int('axis', 0), data.length);
    ctx.output(0, ctx.dtype(0), [...data.slice(0, axis), ...indices, ...data.slice(axis + 1)]);
    const s = ctx.symbolic(0);
    const idx = ctx.constant(1);
    if (s && idx && data.length === 1 && idx.rank <= 1) {
      const picked = idx.toNumbers().map((i) => s[i < 0 ? i + s.length : i]);
      if (picked.every((d) => d !== undefined)) ctx.outputSymbolic(0, picked);
    }
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const idx = numbers(ctx.input(1));
    const idxDims = ctx.input(1).dims;
    const axis = axisOf(ctx, ctx.node.int('axis', 0), x.rank);
    const n = x.dims[axis];
    const outer = shapeSize(x.dims.slice(0, axis));
    const inner = shapeSize(x.dims.slice(axis + 1));
    const dims = [...x.dims.slice(0, axis), ...idxDims, ...x.dims.slice(axis + 1)];
    const src = new Int32Array(shapeSize(dims));
    let k = 0;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < idx.length; j++) {
        let i = idx[j];
        if (i < 0) i += n;
        if (i < 0 || i >= n) return ctx.fail(`Gather index ${idx[j]} is out of range for dim ${n}`);
        for (let r = 0; r < inner; r++) src[k++] = (o * n + i) * inner + r;
      }
    }
    return [takeElements(x, dims, src)];
  },
};

// ---------------------------------------------------------------- Slice

interface SliceSpec {
  starts: number[];
  ends: number[];
  axes: number[];
  steps: number[];
}

/** Clamped start/end/step along one dim, per the ONNX Slice rules. */
function sliceRange(dim: number, start: number, end: number, step: number): [number, number, number, number] {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.max(0, Math.min(dim, s));
    e = Math.max(0, Math.min(dim, e));
  } else {
    s = Math.max(-1, Math.min(dim - 1, s));
    e = Math.max(-1, Math.min(dim - 1, e));
  }
  const count = Math.max(0, Math.ceil((e - s) / step));
  return [s, e, step, count];
}

function sliceSpec(ctx: InferContext): SliceSpec | undefined {
  if (ctx.opset < 10) {
    const starts = ctx.node.ints('starts');
    const ends = ctx.node.ints('ends');
    if (!starts || !ends) return undefined;
    return { starts, ends, axes: ctx.node.ints('axes') ?? starts.map((_, i) => i), steps: starts.map(() => 1) };
  }
  const get = (i: number): number[] | undefined => {
    const s = ctx.symbolic(i);
    return s?.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  };
  const starts = get(1);
  const ends = get(2);
  if (!starts || !ends) return undefined;
  const axes = ctx.hasInput(3) ? get(3) : starts.map((_, i) => i);
  const steps = ctx.hasInput(4) ? get(4) : starts.map(() => 1);
  if (!axes || !steps) return undefined;
  return { starts, ends, axes, steps };
}

const slice: OpSchema = {
  op: 'Slice',
  attrs: { starts: 'ints', ends: 'ints', axes: 'ints' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, ctx.dtype(0), undefined);
    const spec = sliceSpec(ctx);
    if (!spec) {
      const axes = ctx.opset >= 10 && ctx.hasInput(3) ? ctx.symbolic(3) : undefined;
      const out = shape.map((d, i) =>
        axes?.every((a) => typeof a === 'number') && !axes.some((a) => normAxis(a as number, shape.length) === i) ? d : null,
      );
      return ctx.output(0, ctx.dtype(0), out);
    }
    const out: Shape = [...shape];
    spec.axes.forEach((ax, k) => {
      const a = axisOf(ctx, ax, shape.length);
      const d = shape[a];
      const step = spec.steps[k];
      if (step === 0) ctx.fail('Slice step is 0');
      if (typeof d === 'number') out[a] = sliceRange(d, spec.starts[k], spec.ends[k], step)[3];
      else if (spec.starts[k] === 0 && spec.ends[k] >= INT64_MAX / 2 && step === 1) out[a] = d;
      else out[a] = null;
    });
    ctx.output(0, ctx.dtype(0), out);
    const s = ctx.symbolic(0);
    if (s && shape.length === 1) {
      const [st, , step, count] = sliceRange(s.length, spec.starts[0], spec.ends[0], spec.steps[0]);
      ctx.outputSymbolic(
        0,
        Array.from({ length: count }, (_, i) => s[st + i * step]),
      );
    }
  },
  kernel(ctx) {
    const x = ctx.input(0);
    let starts: number[];
    let ends: number[];
    let axes: number[];
    let steps: number[];
    if (ctx.opset < 10) {
      starts = ctx.node.ints('starts') ?? [];
      ends = ctx.node.ints('ends') ?? [];
      axes = ctx.node.ints('axes') ?? starts.map((_, i) => i);
      steps = starts.map(() => 1);
    } else {
      starts = Array.from(numbers(ctx.input(1)));
      ends = Array.from(numbers(ctx.input(2)));
      const ax = ctx.optional(3);
      const st = ctx.optional(4);
      axes = ax ? Array.from(numbers(ax)) : starts.map((_, i) => i);
      steps = st ? Array.from(numbers(st)) : starts.map(() => 1);
    }
    const rank = x.rank;
    const start = new Array<number>(rank).fill(0);
    const step = new Array<number>(rank).fill(1);
    const dims = [...x.dims];
    axes.forEach((ax, k) => {
      const a = axisOf(ctx, ax, rank);
      if (steps[k] === 0) ctx.fail('Slice step is 0');
      const [s, , st, count] = sliceRange(x.dims[a], starts[k], ends[k], steps[k]);
      start[a] = s;
      step[a] = st;
      dims[a] = count;
    });
    const inStrides = strides(x.dims);
    const n = shapeSize(dims);
    const src = new Int32Array(n);
    const counter = new Array<number>(rank).fill(0);
    for (let i = 0; i < n; i++) {
      let pos = 0;
      for (let d = 0; d < rank; d++) pos += (start[d] + counter[d] * step[d]) * inStrides[d];
      src[i] = pos;
      for (let d = rank - 1; d >= 0; d--) {
        if (++counter[d] < dims[d]) break;
        counter[d] = 0;
      }
    }
    return [takeElements(x, dims, src)];
  },
};

// ---------------------------------------------------------------- Shape, Size, Identity, Constant

function shapeRange(ctx: InferContext | KernelContext, rank: number): [number, number] {
  const clamp = (v: number): number => Math.max(0, Math.min(rank, v < 0 ? v + rank : v));
  return [clamp(ctx.node.int('start', 0)), clamp(ctx.node.int('end', rank))];
}

const shapeOp: OpSchema = {
  op: 'Shape',
  attrs: { start: 'int', end: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, 'int64', [null]);
    const [s, e] = shapeRange(ctx, shape.length);
    const dims = shape.slice(s, e);
    ctx.output(0, 'int64', [Math.max(0, e - s)]);
    ctx.outputSymbolic(0, dims);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const [s, e] = shapeRange(ctx, x.rank);
    const dims = x.dims.slice(s, e);
    return [fromNumbers('int64', [dims.length], dims)];
  },
};

const size: OpSchema = {
  op: 'Size',
  infer(ctx) {
    ctx.output(0, 'int64', []);
    const shape = ctx.shape(0);
    if (shape) ctx.outputSymbolic(0, [dimProduct(shape)]);
  },
  kernel: (ctx) => [fromNumbers('int64', [], [ctx.input(0).size])],
};

const identity: OpSchema = {
  op: 'Identity',
  infer(ctx) {
    const t = ctx.inputType(0);
    if (t) ctx.setOutput(0, t);
    const s = ctx.symbolic(0);
    if (s) ctx.outputSymbolic(0, s);
  },
  kernel: (ctx) => [ctx.input(0)],
};

const constant: OpSchema = {
  op: 'Constant',
  attrs: {
    value: 'tensor',
    sparse_value: 'sparse_tensor',
    value_float: 'float',
    value_floats: 'floats',
    value_int: 'int',
    value_ints: 'ints',
    value_string: 'string',
    value_strings: 'strings',
  },
  infer(ctx) {
    const sparse = ctx.node.attr('sparse_value');
    if (sparse?.type === 'sparse_tensor') return ctx.output(0, sparse.value.values.dtype, sparse.value.dims);
    const t = constantNodeValue(ctx.node.attrs);
    if (!t) return ctx.fail('Constant has no value attribute');
    ctx.output(0, t.dtype, [...t.dims]);
  },
  kernel(ctx) {
    const t = constantNodeValue(ctx.node.attrs);
    if (!t) return ctx.fail('Constant has no dense value');
    return [t];
  },
};

// ---------------------------------------------------------------- Expand, ConstantOfShape, Range

const expand: OpSchema = {
  op: 'Expand',
  infer(ctx) {
    const shape = ctx.shape(0);
    const target = ctx.symbolic(1);
    if (!shape || !target) {
      const len = ctx.shape(1)?.[0];
      const rank = typeof len === 'number' && shape ? Math.max(len, shape.length) : undefined;
      return ctx.output(0, ctx.dtype(0), unknownDims(ctx, rank));
    }
    const out = broadcastShapes([shape, target]);
    if (typeof out === 'string') return ctx.fail(out);
    ctx.output(0, ctx.dtype(0), out);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const target = Array.from(numbers(ctx.input(1)));
    const out = broadcastShapes([x.dims, target]);
    if (typeof out === 'string') return ctx.fail(out);
    const dims = out as number[];
    return [takeElements(x, dims, broadcastIndices(x.dims, dims))];
  },
};

const constantOfShape: OpSchema = {
  op: 'ConstantOfShape',
  attrs: { value: 'tensor' },
  infer(ctx) {
    const value = ctx.node.tensorAttr('value');
    const dims = ctx.symbolic(0);
    const len = ctx.shape(0)?.[0];
    ctx.output(0, value?.dtype ?? 'float32', dims ?? unknownDims(ctx, len));
    // A small 1-D integer fill (a shape of ones, say) carries its values on for Reshape/Expand.
    const n = dims?.[0];
    if (dims?.length === 1 && typeof n === 'number' && n <= 64 && (!value || /^u?int/.test(value.dtype))) {
      ctx.outputSymbolic(0, new Array<Dim>(n).fill(value ? value.toNumbers()[0] : 0));
    }
  },
  kernel(ctx) {
    const dims = Array.from(numbers(ctx.input(0)));
    const value = ctx.node.tensorAttr('value');
    const n = shapeSize(dims);
    if (!value) return [Tensor.zeros('float32', dims)];
    return [takeElements(value.reshape([1]), dims, new Int32Array(n))];
  },
};

const range: OpSchema = {
  op: 'Range',
  infer(ctx) {
    const [s, l, d] = [ctx.constant(0), ctx.constant(1), ctx.constant(2)];
    if (s && l && d) {
      const n = Math.max(0, Math.ceil((l.scalarValue() - s.scalarValue()) / d.scalarValue()));
      return ctx.output(0, ctx.dtype(0), [n]);
    }
    ctx.output(0, ctx.dtype(0), [ctx.freshDim('range')]);
  },
  kernel(ctx) {
    const start = ctx.input(0).scalarValue();
    const limit = ctx.input(1).scalarValue();
    const delta = ctx.input(2).scalarValue();
    const n = Math.max(0, Math.ceil((limit - start) / delta));
    return [
      fromNumbers(
        ctx.input(0).dtype,
        [n],
        Array.from({ length: n }, (_, i) => start + i * delta),
      ),
    ];
  },
};

// ---------------------------------------------------------------- gradients

/** Reshape and Flatten: the gradient takes the input's shape back. */
const reshapeGrad: GradRule = fromOutput0((c, dy) => {
  if (c.needs(0)) c.setGrad(0, c.reshapeTo(dy, c.input(0), c.shape(c.output(0))));
});

/** The constant axes input (or attribute) of Squeeze/Unsqueeze, when there is one. */
function gradAxesInput(c: GradContext): Value | undefined {
  const given = c.optionalInput(1);
  if (given) return c.constant(given) ? given : c.fail('the axes must be constant');
  return undefined;
}

/** Elements of a constant int input of a Slice, or undefined when omitted. */
function constInts(c: GradContext, i: number): number[] | undefined {
  const v = c.optionalInput(i);
  if (!v) return undefined;
  const t = c.constant(v);
  if (!t) return c.fail(`input ${i} must be constant`);
  return Array.from(numbers(t));
}

/**
 * Slice's gradient: dY scattered back into zeros shaped like X. A unit step along an axis is a
 * Pad; a step k > 1 first spreads dY out (each element followed by k − 1 zeros: Unsqueeze, Pad,
 * Reshape); a negative step reverses dY along the axis and then places it like a positive one.
 */
function sliceGrad(c: GradContext, dy: Value): Value {
  const x = c.input(0);
  const xShape = c.shape(x);
  const rank = xShape.length;
  const starts = constInts(c, 1) ?? [];
  const ends = constInts(c, 2) ?? [];
  const axes = constInts(c, 3) ?? starts.map((_, i) => i);
  const steps = constInts(c, 4) ?? starts.map(() => 1);
  const before = new Array<number>(rank).fill(0);
  const after = new Array<number>(rank).fill(0);
  let g = dy;
  const cur: Dim[] = [...c.shape(c.output(0))];
  for (const [k, ax] of axes.entries()) {
    const a = axisOf(c, ax, rank);
    const dim = xShape[a];
    if (typeof dim !== 'number') return c.fail(`the sliced axis ${a} needs a known size`);
    let [start, , step, count] = sliceRange(dim, starts[k], ends[k], steps[k]);
    if (count === 0) return c.fail('slicing to an empty tensor has no gradient');
    if (step < 0) {
      // Reverse dY along the axis: it then starts at the lowest index picked, with step |step|.
      g = c.op('Slice', [g, c.ints([-1]), c.ints([-(2 ** 62)]), c.ints([a]), c.ints([-1])]);
      start += step * (count - 1);
      step = -step;
    }
    let length = count;
    if (step > 1) {
      const spread = cur.map((d, i) => (i === a ? count * step : d));
      g = c.op('Unsqueeze', [g, c.ints([a + 1])]);
      const pads = new Array<number>(2 * (rank + 1)).fill(0);
      pads[rank + 1 + a + 1] = step - 1;
      g = c.op('Pad', [g, c.ints(pads)]);
      if (spread.some((d, i) => i !== a && typeof d !== 'number' && i !== 0)) return c.fail('a strided Slice needs the other dims known');
      g = c.op('Reshape', [g, c.ints(spread.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 0 : -1)))]);
      length = count * step;
    }
    cur[a] = length;
    before[a] = start;
    // Negative: the spread-out tail runs past the end and is cut off.
    after[a] = dim - start - length;
  }
  if (before.every((p) => p === 0) && after.every((p) => p === 0)) return g;
  return c.op('Pad', [g, c.ints([...before, ...after])]);
}

/**
 * Gather's gradient: dY added into zeros shaped like the data at the gathered rows
 * (ScatterElements with reduction add, opset 16). Several-dim indices are flattened first, so the
 * indices broadcast over dY along one axis.
 */
function gatherGrad(c: GradContext, dy: Value): Value {
  if (c.opset < 16) c.fail('the gradient of Gather needs opset 16 (ScatterElements with reduction="add")');
  const data = c.input(0);
  const idx = c.input(1);
  const dShape = c.shape(data);
  const iShape = c.shape(idx);
  const rank = dShape.length;
  const axis = axisOf(c, c.node.int('axis', 0), rank);
  let flatIdx = idx;
  let g = dy;
  const count = dimProduct(iShape);
  if (iShape.length !== 1) {
    flatIdx = c.op('Reshape', [idx, c.ints([-1])]);
    const target = [...dShape.slice(0, axis), count, ...dShape.slice(axis + 1)];
    const known = target.map((d, i) => (typeof d === 'number' ? d : i < axis && dimEquals(d, c.shape(c.output(0))[i]) ? 0 : null));
    if (known.filter((d) => d === null).length > 1) return c.fail('Gather with several-dim indices needs known dims');
    g = c.op('Reshape', [dy, c.ints(known.map((d) => d ?? -1))]);
  }
  const gShape = [...dShape.slice(0, axis), count, ...dShape.slice(axis + 1)];
  const along = c.op('Reshape', [flatIdx, c.ints(gShape.map((_, i) => (i === axis ? -1 : 1)))]);
  const gShapeValue = gShape.every((d) => typeof d === 'number') ? c.ints(gShape as number[]) : c.op('Shape', [g]);
  const indices = c.op('Expand', [along, gShapeValue]);
  return c.op('ScatterElements', [c.zerosLike(data), indices, g], { axis, reduction: 'add' });
}

const shapeGrads: Record<string, GradRule> = {
  Reshape: reshapeGrad,
  Flatten: reshapeGrad,
  Identity: fromOutput0((c, dy) => {
    if (c.needs(0)) c.setGrad(0, dy);
  }),
  Squeeze: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const axes = gradAxesInput(c);
    c.setGrad(0, axes ? c.op('Unsqueeze', [dy, axes]) : c.reshapeTo(dy, c.input(0)));
  }),
  Unsqueeze: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const axes = gradAxesInput(c);
    c.setGrad(0, axes ? c.op('Squeeze', [dy, axes]) : c.reshapeTo(dy, c.input(0)));
  }),
  Transpose: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const rank = c.shape(c.input(0)).length;
    const perm = c.node.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => {
      inverse[p] = i;
    });
    c.setGrad(0, c.op('Transpose', [dy], { perm: inverse }));
  }),
  // The inputs' parts of dY, split off along the axis.
  Concat: fromOutput0((c, dy) => {
    const n = c.node.inputs.length;
    const rank = c.shape(c.input(0)).length;
    const axis = axisOf(c, c.node.int('axis', 0), rank);
    if (n === 1) {
      if (c.needs(0)) c.setGrad(0, dy);
      return;
    }
    const sizes = c.node.inputs.map((v) => c.shape(v as Value)[axis]);
    const sizeOf = (v: Value): Value =>
      c.opset >= 15 ? c.op('Shape', [v], { start: axis, end: axis + 1 }) : c.op('Gather', [c.op('Shape', [v]), c.ints([axis])]);
    const split = sizes.every((d) => typeof d === 'number')
      ? c.ints(sizes as number[])
      : c.op(
          'Concat',
          c.node.inputs.map((v) => sizeOf(v as Value)),
          { axis: 0 },
        );
    const parts = c.opMulti('Split', [dy, split], n, { axis });
    for (let i = 0; i < n; i++) if (c.needs(i)) c.setGrad(i, parts[i]);
  }),
  Gather: fromOutput0((c, dy) => {
    if (c.needs(0)) c.setGrad(0, gatherGrad(c, dy));
  }),
  Slice: fromOutput0((c, dy) => {
    if (c.needs(0)) c.setGrad(0, sliceGrad(c, dy));
  }),
  Expand: fromOutput0((c, dy) => {
    if (c.needs(0)) c.setGrad(0, c.sumTo(dy, c.shape(c.output(0)), c.input(0)));
  }),
};

export const SHAPE_OPS: OpSchema[] = withGradients(
  [
    reshape,
    squeeze,
    unsqueeze,
    flatten,
    transpose,
    concat,
    gather,
    slice,
    shapeOp,
    size,
    identity,
    constant,
    expand,
    constantOfShape,
    range,
  ],
  shapeGrads,
);
