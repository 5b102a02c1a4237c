/**
 * Ops that move data. Where the data order allows, they keep their input's layout instead of
 * forcing ONNX order:
 * - Transpose emits nothing: its output is its input's tensor seen in another layout;
 * - Squeeze/Unsqueeze (and a Reshape that only drops or adds 1s) → RESHAPE in the input's layout;
 * - Concat/Split/Slice/Pad/Gather renumber their axes into the layout;
 * - Reshape/Flatten need ONNX's element order: their input is brought to it, which costs nothing
 *   when only 1-sized axes move (global pooling → Flatten → FULLY_CONNECTED in a conv net).
 * In int8 they all keep their input's quantization parameters (CONCATENATION brings its inputs
 * to the output's), as TFLite's kernels require.
 */
import type { Node, Value } from '../../../../ir/graph.js';
import { Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { axisIn, identity, permuteShape, sameDataOrder, withAxes, withoutAxes } from '../layout.js';
import { input, type Lowering, refuse } from './common.js';
import { commonLayout } from './elementwise.js';

/** int8 when the value has an int8 form (the op then keeps its parameters). */
function passKind(ctx: LowerContext, x: Value): Kind {
  return ctx.canInt8(x) ? 'int8' : 'float';
}

function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

/** Integer list from an attribute (older opsets) or a constant input (newer ones). */
function intList(ctx: LowerContext, node: Node, attr: string, inputIndex: number): number[] | undefined {
  const a = node.ints(attr);
  if (a) return a;
  const v = node.input(inputIndex);
  if (!v) return undefined;
  return ctx.constant(v, attr, node).toNumbers();
}

/** Output of `x` reshaped to `out`'s dims, in layout `perm` whose data order `x` already has in one of its tensors (else ONNX order). */
function reshapeTo(ctx: LowerContext, node: Node, x: Value, out: Value, outPerm: readonly number[], fromPerm: readonly number[]): void {
  const kind = passKind(ctx, x);
  const t = ctx.read(x, fromPerm, kind);
  const y = ctx.produce(out, outPerm, kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const shape = permuteShape(ctx.shape(out), outPerm);
  const shapeTensor = ctx.int32Const(`${node.name || out.name}/shape`, shape);
  ctx.op(Builtin.RESHAPE, [t, shapeTensor], [y], { type: 'ReshapeOptions', fields: { new_shape: shape } });
}

function lowerReshape(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const xs = ctx.shape(x);
  const os = ctx.shape(out);
  // Only 1s dropped or added: keep the layout.
  const big = (s: number[]) => s.filter((d) => d !== 1);
  const bx = big(xs);
  const bo = big(os);
  if (!ctx.isConstant(x) && bx.length === bo.length && bx.every((d, i) => d === bo[i]) && new Set(bx).size === bx.length) {
    const perm = ctx.layout(x);
    // Order of the big axes in the layout, carried over to the output's axes of the same size.
    const outAxis = (inAxis: number) => os.indexOf(xs[inAxis]);
    const bigOrder = perm.filter((a) => xs[a] !== 1).map(outAxis);
    const ones = identity(os.length).filter((a) => os[a] === 1);
    const outPerm = mergeOnes(bigOrder, ones);
    reshapeTo(ctx, node, x, out, outPerm, perm);
    return;
  }
  if (flattenIntoDense(ctx, node, x, out)) return;
  const rank = ctx.rank(x);
  const from = ctx.isConstant(x)
    ? identity(rank)
    : (ctx.repsOf(x).find((r) => sameDataOrder(xs, r.perm, identity(rank)))?.perm ?? identity(rank));
  reshapeTo(ctx, node, x, out, identity(os.length), from);
}

/** True when `out` is read by one FULLY_CONNECTED-able Gemm/MatMul alone (as its data input). */
function readByDenseOnly(ctx: LowerContext, out: Value): boolean {
  if (out.isGraphOutput || out.uses.length !== 1) return false;
  const { node, index } = out.uses[0];
  if (index !== 0) return false;
  const w = node.input(1);
  if (!w || !ctx.isConstant(w) || w.initializer?.dims.length !== 2) return false;
  if (node.opType === 'Gemm') return node.int('transA', 0) === 0;
  return node.opType === 'MatMul';
}

/**
 * Flatten/Reshape [N, ...] → [N, K] of a tensor laid out otherwise than ONNX (NHWC after the last
 * conv), read by a FULLY_CONNECTED alone: flatten the tensor as it lies and let the dense layer's
 * weight columns follow that order (ctx.columnOrder), instead of a TRANSPOSE back to NCHW.
 */
function flattenIntoDense(ctx: LowerContext, node: Node, x: Value, out: Value): boolean {
  if (ctx.isConstant(x)) return false;
  const xs = ctx.shape(x);
  const os = ctx.shape(out);
  const perm = ctx.layout(x);
  if (os.length !== 2 || xs.length < 3 || os[0] !== xs[0] || perm[0] !== 0) return false;
  if (sameDataOrder(xs, perm, identity(xs.length)) || !readByDenseOnly(ctx, out)) return false;
  const kind = passKind(ctx, x);
  const t = ctx.read(x, perm, kind);
  const y = ctx.produce(out, identity(2), kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const shapeTensor = ctx.int32Const(`${node.name || out.name}/shape`, os);
  ctx.op(Builtin.RESHAPE, [t, shapeTensor], [y], { type: 'ReshapeOptions', fields: { new_shape: os } });
  // Column j of the tflite tensor (row-major over the laid-out dims) is ONNX column order[j].
  const rest = xs.slice(1);
  const onnxStrides = rest.map((_, i) => rest.slice(i + 1).reduce((a, b) => a * b, 1));
  const laid = perm.slice(1).map((a) => a - 1);
  const order = new Int32Array(os[1]);
  const index = new Array<number>(laid.length).fill(0);
  for (let j = 0; j < order.length; j++) {
    let flat = 0;
    for (let i = 0; i < laid.length; i++) flat += index[i] * onnxStrides[laid[i]];
    order[j] = flat;
    for (let i = laid.length - 1; i >= 0; i--) {
      if (++index[i] < rest[laid[i]]) break;
      index[i] = 0;
    }
  }
  ctx.columnOrder.set(out, order);
  return true;
}

/** A layout placing the big axes in `bigOrder` and each 1-sized axis at its own index. */
function mergeOnes(bigOrder: number[], ones: number[]): number[] {
  const out = [...bigOrder];
  for (const a of ones) out.splice(Math.min(a, out.length), 0, a);
  return out;
}

function lowerSqueeze(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const xs = ctx.shape(x);
  const axes = (intList(ctx, node, 'axes', 1) ?? xs.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normAxis(a, xs.length));
  const perm = ctx.isConstant(x) ? identity(xs.length) : ctx.layout(x);
  reshapeTo(ctx, node, x, out, withoutAxes(perm, axes), perm);
}

function lowerUnsqueeze(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const rank = ctx.rank(out);
  const axes = (intList(ctx, node, 'axes', 1) ?? []).map((a) => normAxis(a, rank));
  const perm = ctx.isConstant(x) ? identity(ctx.rank(x)) : ctx.layout(x);
  reshapeTo(ctx, node, x, out, withAxes(perm, axes), perm);
}

/** Transpose(x, p) in layout P is x's tensor in layout p⁻¹∘P: no op at all. */
function lowerTranspose(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const rank = ctx.rank(x);
  const p = node.ints('perm') ?? identity(rank).reverse();
  if (ctx.isConstant(x)) refuse(node, 'a Transpose of a constant should have been folded (run mobilize optimize)');
  const inv = new Array<number>(rank);
  p.forEach((a, i) => {
    inv[a] = i;
  });
  for (const r of ctx.repsOf(x)) ctx.define(out, { ...r, perm: r.perm.map((a) => inv[a]) });
}

function lowerConcat(ctx: LowerContext, node: Node): void {
  const out = node.output(0);
  const rank = ctx.rank(out);
  const xs = node.inputs.filter((v): v is Value => v !== null);
  const axis = normAxis(node.int('axis', 0), rank);
  const perm = commonLayout(ctx, xs, rank);
  const kind: Kind = ctx.canInt8(out) && xs.every((v) => ctx.isConstant(v) || ctx.canInt8(v)) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const params = kind === 'int8' ? ctx.paramsOf(out) : undefined;
  const ts = xs.map((v) => ctx.operand(v, rank, perm, kind, params));
  const y = ctx.produce(out, perm, kind, params);
  ctx.op(Builtin.CONCATENATION, ts, [y], {
    type: 'ConcatenationOptions',
    fields: { axis: axisIn(perm, axis), fused_activation_function: 0 },
  });
}

function lowerSplit(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const xs = ctx.shape(x);
  const axis = normAxis(node.int('axis', 0), xs.length);
  const outs = node.outputs.filter((v): v is Value => v !== null);
  if (outs.length !== node.outputs.length) refuse(node, 'an unused Split output is not exported');
  const sizes = outs.map((o) => ctx.shape(o)[axis]);
  const perm = ctx.layout(x);
  const kind = passKind(ctx, x);
  const t = ctx.read(x, perm, kind);
  const params = kind === 'int8' ? ctx.paramsOf(x) : undefined;
  const ys = outs.map((o) => ctx.produce(o, perm, kind, params));
  const base = node.name || outs[0].name;
  const axisTensor = ctx.int32Const(`${base}/axis`, [axisIn(perm, axis)], []);
  ctx.op(Builtin.SPLIT_V, [t, ctx.int32Const(`${base}/sizes`, sizes), axisTensor], ys, {
    type: 'SplitVOptions',
    fields: { num_splits: outs.length },
  });
}

function lowerSlice(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const xs = ctx.shape(x);
  const rank = xs.length;
  const starts = intList(ctx, node, 'starts', 1) ?? [];
  const ends = intList(ctx, node, 'ends', 2) ?? [];
  const axes = (intList(ctx, node, 'axes', 3) ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank));
  const steps = node.input(4) ? ctx.constant(node.input(4) as Value, 'steps', node).toNumbers() : starts.map(() => 1);
  const begin = new Array<number>(rank).fill(0);
  const end = [...xs];
  const stride = new Array<number>(rank).fill(1);
  let endMask = 0;
  const perm = ctx.layout(x);
  axes.forEach((a, i) => {
    const d = xs[a];
    const step = steps[i];
    if (step === 0) refuse(node, 'a step of 0');
    const clampIndex = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v < 0 ? v + d : v));
    stride[a] = step;
    if (step > 0) {
      begin[a] = clampIndex(starts[i], 0, d);
      end[a] = clampIndex(ends[i], 0, d);
    } else {
      begin[a] = clampIndex(starts[i], -1, d - 1);
      const e = ends[i] < -d ? -1 : clampIndex(ends[i], -1, d - 1);
      end[a] = e;
      if (e < 0) endMask |= 1 << axisIn(perm, a);
    }
  });
  const kind = passKind(ctx, x);
  const t = ctx.read(x, perm, kind);
  const y = ctx.produce(out, perm, kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const base = node.name || out.name;
  const fields = { begin_mask: 0, end_mask: endMask, ellipsis_mask: 0, new_axis_mask: 0, shrink_axis_mask: 0, offset: false };
  ctx.op(
    Builtin.STRIDED_SLICE,
    [
      t,
      ctx.int32Const(`${base}/begin`, permuteShape(begin, perm)),
      ctx.int32Const(`${base}/end`, permuteShape(end, perm)),
      ctx.int32Const(`${base}/strides`, permuteShape(stride, perm)),
    ],
    [y],
    { type: 'StridedSliceOptions', fields },
  );
}

function lowerGather(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const idx = input(node, 1, 'indices');
  const out = node.output(0);
  const rank = ctx.rank(x);
  const axis = normAxis(node.int('axis', 0), rank);
  if (!ctx.isConstant(idx)) refuse(node, 'indices computed at run time are not exported');
  const ind = idx.initializer;
  if (!ind) refuse(node, 'indices missing');
  const d = ctx.shape(x)[axis];
  const values = ind.toNumbers().map((i) => (i < 0 ? i + d : i));
  const kind = passKind(ctx, x);
  const perm = ind.dims.length <= 1 && !ctx.isConstant(x) ? ctx.layout(x) : identity(rank);
  const outPerm = ind.dims.length === 0 ? withoutAxes(perm, [axis]) : ind.dims.length === 1 ? perm : identity(ctx.rank(out));
  const t = ctx.read(x, perm, kind);
  const y = ctx.produce(out, outPerm, kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const indices = ctx.int32Const(`${node.name || out.name}/indices`, values, [...ind.dims]);
  ctx.op(Builtin.GATHER, [t, indices], [y], { type: 'GatherOptions', fields: { axis: axisIn(perm, axis), batch_dims: 0 } });
}

function lowerPad(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const rank = ctx.rank(x);
  const mode = node.str('mode', 'constant');
  const pads = intList(ctx, node, 'pads', 1);
  if (!pads || pads.length !== 2 * rank) refuse(node, 'its pads must be a constant with two entries per axis');
  const axesInput = node.input(3);
  if (axesInput) refuse(node, 'Pad with an axes input is not exported');
  const valueInput = node.input(2);
  const value = node.float('value') ?? (valueInput ? ctx.constant(valueInput, 'constant value', node).toFloat32()[0] : 0);
  const perm = ctx.layout(x);
  const kind = passKind(ctx, x);
  const t = ctx.read(x, perm, kind);
  const params = kind === 'int8' ? ctx.paramsOf(x) : undefined;
  const y = ctx.produce(out, perm, kind, params);
  const base = node.name || out.name;
  const paddings = ctx.int32Const(
    `${base}/paddings`,
    perm.flatMap((a) => [pads[a], pads[a + rank]]),
    [rank, 2],
  );
  if (mode === 'reflect') {
    ctx.op(Builtin.MIRROR_PAD, [t, paddings], [y], { type: 'MirrorPadOptions', fields: { mode: 0 } });
  } else if (mode === 'constant' && value === 0) {
    ctx.op(Builtin.PAD, [t, paddings], [y], { type: 'PadOptions', fields: {} });
  } else if (mode === 'constant') {
    const v =
      kind === 'int8' && params
        ? ctx.scalarInt8Raw(`${base}/value`, Math.max(-128, Math.min(127, Math.round(value / params.scale) + params.zeroPoint)), params)
        : ctx.floatConst(`${base}/value`, Float32Array.of(value), []);
    ctx.op(Builtin.PADV2, [t, paddings, v], [y], { type: 'PadV2Options', fields: {} });
  } else {
    refuse(node, `pad mode "${mode}" has no TFLite builtin`);
  }
}

function lowerDepthToSpace(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const toSpace = node.opType === 'DepthToSpace';
  if (toSpace && node.str('mode', 'DCR') !== 'DCR') refuse(node, 'mode CRD has no TFLite builtin (DEPTH_TO_SPACE is DCR)');
  const kind = passKind(ctx, x);
  const t = ctx.read(x, [0, 2, 3, 1], kind);
  const y = ctx.produce(out, [0, 2, 3, 1], kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const type = toSpace ? 'DepthToSpaceOptions' : 'SpaceToDepthOptions';
  ctx.op(toSpace ? Builtin.DEPTH_TO_SPACE : Builtin.SPACE_TO_DEPTH, [t], [y], { type, fields: { block_size: node.int('blocksize', 1) } });
}

export const SHAPE_LOWERINGS: Record<string, Lowering> = {
  Reshape: lowerReshape,
  Flatten: lowerReshape,
  Squeeze: lowerSqueeze,
  Unsqueeze: lowerUnsqueeze,
  Transpose: lowerTranspose,
  Concat: lowerConcat,
  Split: lowerSplit,
  Slice: lowerSlice,
  Gather: lowerGather,
  Pad: lowerPad,
  DepthToSpace: lowerDepthToSpace,
  SpaceToDepth: lowerDepthToSpace,
};
