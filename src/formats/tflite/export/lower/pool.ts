/**
 * MaxPool / AveragePool → MAX_POOL_2D / AVERAGE_POOL_2D on NHWC. Pads SAME/VALID express are
 * used as they are; other pads become an explicit pad first (−∞ for max pooling; zeros for
 * average pooling that counts the pad, which is what VALID over the padded tensor divides by).
 * TFLite's SAME average pooling leaves the pad out of the count, as ONNX's count_include_pad=0.
 * GlobalAveragePool → MEAN over H and W (keep dims), GlobalMaxPool → REDUCE_MAX; both work in
 * any layout, so they keep their input's.
 */
import type { Node } from '../../../../ir/graph.js';
import { Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { axisIn, NHWC } from '../layout.js';
import { choosePadding, explicitPads, input, refuse, window2d } from './common.js';
import { paddedInput } from './conv.js';

export function lowerPool(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  if (node.outputs.length > 1 && node.outputs[1]) refuse(node, 'MaxPool indices have no TFLite builtin');
  const xs = ctx.shape(x);
  const os = ctx.shape(out);
  if (xs.length !== 4) refuse(node, `only 2-D pooling is exported (input rank ${xs.length})`);
  const kernel = node.ints('kernel_shape', []);
  if (kernel.length !== 2) refuse(node, 'kernel_shape must have two dims');
  const win = window2d(node, kernel, [xs[2], xs[3]]);
  if (win.dilations.some((d) => d !== 1)) refuse(node, 'dilated pooling has no TFLite builtin');
  const max = node.opType === 'MaxPool';
  const choice = choosePadding(win, [xs[2], xs[3]], [os[2], os[3]]);
  let padding: number = 'padding' in choice ? choice.padding : 1;
  const includePad = node.int('count_include_pad', 0) === 1;
  if (!max && 'padding' in choice && choice.padding === 0 && includePad && win.pads.some((p) => p > 0)) padding = -1;
  if (!max && ('explicit' in choice || padding === -1) && !includePad) {
    refuse(node, `pads [${win.pads.join(',')}] with count_include_pad=0 have no TFLite equivalent`);
  }
  // Pooling keeps its input's parameters in int8.
  const kind: Kind = ctx.canInt8(x) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const explicit =
    'explicit' in choice ? choice.explicit : padding === -1 ? explicitPads(win, [xs[2], xs[3]], [os[2], os[3]]) : [0, 0, 0, 0];
  if (padding === -1) padding = 1;
  const padded = paddedInput(ctx, x, kind, explicit, max ? Number.NEGATIVE_INFINITY : undefined);
  const y = ctx.produce(out, NHWC, kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const fields = {
    padding,
    stride_h: win.strides[0],
    stride_w: win.strides[1],
    filter_height: kernel[0],
    filter_width: kernel[1],
    fused_activation_function: 0,
  };
  ctx.op(
    max ? Builtin.MAX_POOL_2D : Builtin.AVERAGE_POOL_2D,
    [padded.tensor],
    [y],
    { type: 'Pool2DOptions', fields },
    kind === 'int8' ? 2 : 1,
  );
}

export function lowerGlobalPool(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const rank = ctx.rank(x);
  const perm = ctx.layout(x);
  const axes = Array.from({ length: rank - 2 }, (_, i) => axisIn(perm, i + 2));
  const mean = node.opType === 'GlobalAveragePool';
  // MEAN requantizes; REDUCE_MAX keeps the input's grid.
  const kind: Kind = mean ? (ctx.canInt8(x, out) ? 'int8' : 'float') : ctx.canInt8(x) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const xin = ctx.read(x, perm, kind);
  const y = ctx.produce(out, perm, kind, kind === 'int8' && !mean ? ctx.paramsOf(x) : undefined);
  const axesTensor = ctx.int32Const(`${node.name || out.name}/axes`, axes);
  ctx.op(mean ? Builtin.MEAN : Builtin.REDUCE_MAX, [xin, axesTensor], [y], { type: 'ReducerOptions', fields: { keep_dims: true } });
}
