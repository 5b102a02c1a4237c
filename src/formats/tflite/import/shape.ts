/**
 * Ops that move or select data: reshapes, concatenation, padding, transposes, slices, gathers,
 * splits, reductions, casts. TFLite passes their parameters (shapes, axes, paddings) as int32
 * constant tensors; ONNX wants int64, so the values are read at import and written as int64
 * constants (a non-constant parameter is cast instead).
 */
import { dtypeCode } from '../../../ir/dtype.js';
import type { Value } from '../../../ir/graph.js';
import { intValues } from './constants.js';
import { type ImportContext, option, optionList } from './context.js';

const INT64_MAX = 2 ** 63;

function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** A shape/axes parameter as an int64 value: constant values when known, else a Cast. */
function int64Input(ctx: ImportContext, i: number): Value {
  const c = ctx.constantOf(ctx.inputIndex(i));
  if (c !== undefined) return ctx.int64(intValues(c));
  return ctx.op('Cast', [ctx.input(i)], { to: dtypeCode('int64') });
}

export function reshape(ctx: ImportContext): void {
  const out = ctx.outputShape(0);
  let target: number[] | undefined;
  if (ctx.hasInput(1) && ctx.constantOf(ctx.inputIndex(1)) !== undefined) target = ctx.ints(1, 'shape');
  else if (!ctx.hasInput(1) && optionList(ctx, 'new_shape').length > 0) target = optionList(ctx, 'new_shape');
  if (target === undefined && ctx.hasInput(1)) {
    ctx.output(0, ctx.op('Reshape', [ctx.input(0), int64Input(ctx, 1)]));
    return;
  }
  // ONNX reads 0 as "keep this dim"; TFLite means an empty dim: use the stored output shape then.
  if (target === undefined || target.includes(0)) target = out;
  ctx.output(0, ctx.op('Reshape', [ctx.input(0), ctx.int64(target)]));
}

/** SQUEEZE and EXPAND_DIMS: the stored output shape says everything. */
export function reshapeToOutput(ctx: ImportContext): void {
  ctx.output(0, ctx.op('Reshape', [ctx.input(0), ctx.int64(ctx.outputShape(0))]));
}

/** Where NHWC axis `a` sits in NCHW. */
const NCHW_AXIS = [0, 2, 3, 1];

export function concatenation(ctx: ImportContext): void {
  const rank = ctx.outputShape(0).length;
  const inputs = ctx.current.inputs.map((_, i) => ctx.input(i));
  const axis = norm(option(ctx, 'axis'), rank);
  const act = option(ctx, 'fused_activation_function');
  const twins = rank === 4 ? ctx.nchwTwins(inputs) : undefined;
  if (twins?.every((v) => v.initializer === undefined)) {
    ctx.output(0, ctx.nhwc(ctx.activation(ctx.op('Concat', twins, { axis: NCHW_AXIS[axis] }), act)));
    return;
  }
  ctx.output(0, ctx.activation(ctx.op('Concat', inputs, { axis }), act));
}

function padsOf(ctx: ImportContext): number[] {
  const flat = ctx.ints(1, 'paddings');
  const rank = flat.length / 2;
  const pads = new Array<number>(2 * rank);
  for (let d = 0; d < rank; d++) {
    pads[d] = flat[2 * d];
    pads[rank + d] = flat[2 * d + 1];
  }
  return pads;
}

export function pad(ctx: ImportContext): void {
  const x = ctx.input(0);
  const pads = padsOf(ctx);
  const value = ctx.hasInput(2) ? [ctx.op('Reshape', [ctx.input(2), ctx.int64([], [0])])] : [];
  const twin = pads.length === 8 ? ctx.nchwTwins([x]) : undefined;
  if (twin) {
    // NHWC pads [b0 b1 b2 b3 e0 e1 e2 e3] in NCHW order.
    const nchw = [pads[0], pads[3], pads[1], pads[2], pads[4], pads[7], pads[5], pads[6]];
    ctx.output(0, ctx.nhwc(ctx.op('Pad', [twin[0], ctx.int64(nchw), ...value], { mode: 'constant' })));
    return;
  }
  ctx.output(0, ctx.op('Pad', [x, ctx.int64(pads), ...value], { mode: 'constant' }));
}

export function mirrorPad(ctx: ImportContext): void {
  if (option(ctx, 'mode') !== 0) ctx.fail('SYMMETRIC mirror padding has no ONNX Pad mode (only REFLECT does)');
  ctx.output(0, ctx.op('Pad', [ctx.input(0), ctx.int64(padsOf(ctx))], { mode: 'reflect' }));
}

export function transpose(ctx: ImportContext): void {
  ctx.output(0, ctx.op('Transpose', [ctx.input(0)], { perm: ctx.ints(1, 'permutation') }));
}

/** MEAN, SUM, REDUCE_*: opset 17 takes ReduceSum's axes as an input and the others' as an attribute. */
export function reduce(opType: string) {
  return (ctx: ImportContext): void => {
    const rank = ctx.shapeOf(0).length;
    const axes = [...new Set(ctx.ints(1, 'axes').map((a) => norm(a, rank)))].sort((a, b) => a - b);
    const keepdims = option(ctx, 'keep_dims') ? 1 : 0;
    const y =
      opType === 'ReduceSum'
        ? ctx.op(opType, [ctx.input(0), ctx.int64(axes)], { keepdims })
        : ctx.op(opType, [ctx.input(0)], { axes, keepdims });
    ctx.output(0, y);
  };
}

export function slice(ctx: ImportContext): void {
  const begin = ctx.ints(1, 'begin');
  const size = ctx.ints(2, 'size');
  const ends = begin.map((b, i) => (size[i] < 0 ? INT64_MAX : b + size[i]));
  const axes = begin.map((_, i) => i);
  ctx.output(0, ctx.op('Slice', [ctx.input(0), ctx.int64(begin), ctx.int64(ends), ctx.int64(axes)]));
}

/** STRIDED_SLICE with begin/end/shrink masks (ellipsis and new-axis masks are refused). */
export function stridedSlice(ctx: ImportContext): void {
  if (option(ctx, 'ellipsis_mask') || option(ctx, 'new_axis_mask')) ctx.fail('ellipsis and new-axis masks are not supported');
  const begin = ctx.ints(1, 'begin');
  const end = ctx.ints(2, 'end');
  const strides = ctx.hasInput(3) ? ctx.ints(3, 'strides') : begin.map(() => 1);
  const beginMask = option(ctx, 'begin_mask');
  const endMask = option(ctx, 'end_mask');
  const shrink = option(ctx, 'shrink_axis_mask');
  const offset = option(ctx, 'offset');
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < begin.length; i++) {
    const step = strides[i];
    if (step === 0) ctx.fail('has a zero stride');
    const bit = 1 << i;
    const s = beginMask & bit ? (step > 0 ? 0 : INT64_MAX) : begin[i];
    let e = endMask & bit ? (step > 0 ? INT64_MAX : -INT64_MAX) : offset ? begin[i] + end[i] : end[i];
    if (shrink & bit) e = s === -1 ? INT64_MAX : s + 1;
    starts.push(s);
    ends.push(e);
  }
  const axes = begin.map((_, i) => i);
  const y = ctx.op('Slice', [ctx.input(0), ctx.int64(starts), ctx.int64(ends), ctx.int64(axes), ctx.int64(strides)]);
  ctx.output(0, shrink ? ctx.op('Reshape', [y, ctx.int64(ctx.outputShape(0))]) : y);
}

export function gather(ctx: ImportContext): void {
  if (option(ctx, 'batch_dims')) ctx.fail('batch_dims > 0 is not supported');
  const rank = ctx.shapeOf(0).length;
  ctx.output(0, ctx.op('Gather', [ctx.input(0), ctx.input(1)], { axis: norm(option(ctx, 'axis'), rank) }));
}

export function gatherNd(ctx: ImportContext): void {
  const indices = ctx.op('Cast', [ctx.input(1)], { to: dtypeCode('int64') });
  ctx.output(0, ctx.op('GatherND', [ctx.input(0), indices]));
}

function splitInto(ctx: ImportContext, x: Value, axis: number, sizes: number[]): void {
  const parts = ctx.opMulti('Split', [x, ctx.int64(sizes)], { axis }, sizes.length);
  for (const [i, p] of parts.entries()) ctx.output(i, p);
}

export function split(ctx: ImportContext): void {
  const rank = ctx.shapeOf(1).length;
  const axis = norm(ctx.ints(0, 'axis')[0], rank);
  const sizes = ctx.current.outputs.map((_, i) => ctx.outputShape(i)[axis]);
  splitInto(ctx, ctx.input(1), axis, sizes);
}

export function splitV(ctx: ImportContext): void {
  const rank = ctx.shapeOf(0).length;
  const axis = norm(ctx.ints(2, 'axis')[0], rank);
  const sizes = ctx.current.outputs.map((_, i) => ctx.outputShape(i)[axis]);
  splitInto(ctx, ctx.input(0), axis, sizes);
}

export function pack(ctx: ImportContext): void {
  const rank = ctx.outputShape(0).length;
  const axis = norm(option(ctx, 'axis'), rank);
  const parts = ctx.current.inputs.map((_, i) => ctx.op('Unsqueeze', [ctx.input(i), ctx.int64([axis])]));
  ctx.output(0, parts.length === 1 ? parts[0] : ctx.op('Concat', parts, { axis }));
}

export function unpack(ctx: ImportContext): void {
  const rank = ctx.shapeOf(0).length;
  const axis = norm(option(ctx, 'axis'), rank);
  const count = ctx.current.outputs.length;
  const parts = ctx.opMulti('Split', [ctx.input(0), ctx.int64(new Array(count).fill(1))], { axis }, count);
  for (const [i, p] of parts.entries()) ctx.output(i, ctx.op('Squeeze', [p, ctx.int64([axis])]));
}

export function tile(ctx: ImportContext): void {
  ctx.output(0, ctx.op('Tile', [ctx.input(0), int64Input(ctx, 1)]));
}

export function cast(ctx: ImportContext): void {
  ctx.output(0, ctx.op('Cast', [ctx.input(0)], { to: dtypeCode(ctx.outputDtype(0)) }));
}

export function argReduce(opType: 'ArgMax' | 'ArgMin') {
  return (ctx: ImportContext): void => {
    const rank = ctx.shapeOf(0).length;
    const axis = norm(ctx.ints(1, 'axis')[0], rank);
    const y = ctx.op(opType, [ctx.input(0)], { axis, keepdims: 0 });
    const dtype = ctx.outputDtype(0);
    ctx.output(0, dtype === 'int64' ? y : ctx.op('Cast', [y], { to: dtypeCode(dtype) }));
  };
}

export function shape(ctx: ImportContext): void {
  const y = ctx.op('Shape', [ctx.input(0)]);
  const dtype = ctx.outputDtype(0);
  ctx.output(0, dtype === 'int64' ? y : ctx.op('Cast', [y], { to: dtypeCode(dtype) }));
}

/** DEQUANTIZE/DENSIFY of a constant: the output is that constant (decoded where it is read). */
export function constantPassThrough(ctx: ImportContext): void {
  const input = ctx.inputIndex(0);
  if (ctx.constantOf(input) !== undefined) {
    ctx.alias(ctx.current.outputs[0], input);
    return;
  }
  ctx.output(0, ctx.input(0));
}
