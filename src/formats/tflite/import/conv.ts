/**
 * Convolutions and pools: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV (and MediaPipe's custom
 * Convolution2DTransposeBias), AVERAGE_POOL_2D, MAX_POOL_2D. Each runs in NCHW between the two
 * layout Transposes; filters are permuted at import (OHWI → OIHW, 1HWO → O1HW, OHWI → IOHW).
 * TFLite SAME padding puts the odd pixel at the end, the explicit pads below spell that out.
 */
import type { Value } from '../../../ir/graph.js';
import { Padding } from '../model.js';
import { type ImportContext, option } from './context.js';

/** [begin, end] padding of one spatial dim, as TFLite computes it. */
export function samePads(size: number, kernel: number, stride: number, dilation: number, padding: number): [number, number] {
  if (padding !== Padding.SAME) return [0, 0];
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

function spatialAttrs(ctx: ImportContext, h: number, w: number, kh: number, kw: number, dilated: boolean) {
  const sh = option(ctx, 'stride_h', 1);
  const sw = option(ctx, 'stride_w', 1);
  const dh = dilated ? option(ctx, 'dilation_h_factor', 1) : 1;
  const dw = dilated ? option(ctx, 'dilation_w_factor', 1) : 1;
  const padding = option(ctx, 'padding', Padding.SAME);
  const [pt, pb] = samePads(h, kh, sh, dh, padding);
  const [pl, pr] = samePads(w, kw, sw, dw, padding);
  return { strides: [sh, sw], dilations: [dh, dw], pads: [pt, pl, pb, pr] };
}

function finish(ctx: ImportContext, y: Value): void {
  ctx.output(0, ctx.nhwc(ctx.activation(y, option(ctx, 'fused_activation_function'))));
}

export function conv2d(ctx: ImportContext): void {
  const [, h, w, cin] = ctx.shapeOf(0);
  const [, kh, kw, cinPerGroup] = ctx.shapeOf(1);
  if (!(cinPerGroup > 0 && cin % cinPerGroup === 0)) ctx.fail(`filter has ${cinPerGroup} input channels for an input of ${cin}`);
  const x = ctx.nchw(ctx.input(0));
  const filter = ctx.weight(1, [0, 3, 1, 2]);
  const bias = ctx.hasInput(2) ? ctx.input(2) : null;
  const attrs = { kernel_shape: [kh, kw], group: cin / cinPerGroup, ...spatialAttrs(ctx, h, w, kh, kw, true) };
  finish(ctx, ctx.op('Conv', bias ? [x, filter, bias] : [x, filter], attrs));
}

export function depthwiseConv2d(ctx: ImportContext): void {
  const [, h, w, cin] = ctx.shapeOf(0);
  const [, kh, kw, cout] = ctx.shapeOf(1);
  if (!(cin > 0 && cout % cin === 0)) ctx.fail(`depthwise filter has ${cout} channels for an input of ${cin}`);
  const x = ctx.nchw(ctx.input(0));
  const filter = ctx.weight(1, [3, 0, 1, 2]);
  const bias = ctx.hasInput(2) ? ctx.input(2) : null;
  const attrs = { kernel_shape: [kh, kw], group: cin, ...spatialAttrs(ctx, h, w, kh, kw, true) };
  finish(ctx, ctx.op('Conv', bias ? [x, filter, bias] : [x, filter], attrs));
}

/** ConvTranspose producing exactly the output tensor's size, with TFLite's padding split. */
function transposed(ctx: ImportContext, xi: number, wi: number, bi: number, stride: [number, number], padding: number, act: number): void {
  const [, h, w] = ctx.shapeOf(xi);
  const [, kh, kw] = ctx.shapeOf(wi);
  const [, oh, ow] = ctx.outputShape(0);
  const pads: number[] = [];
  const outputPadding: number[] = [];
  for (const [size, k, s, out] of [
    [h, kh, stride[0], oh],
    [w, kw, stride[1], ow],
  ]) {
    // TFLite pads as the forward convolution from `out` back to `size` would.
    const forward = padding === Padding.SAME ? Math.ceil(out / s) : Math.floor((out - k + s) / s);
    const total = Math.max((forward - 1) * s + k - out, 0);
    const begin = Math.floor(total / 2);
    pads.push(begin, total - begin);
    outputPadding.push(out - ((size - 1) * s + k - total));
  }
  if (outputPadding.some((p) => p < 0 || p >= Math.max(stride[0], stride[1]))) {
    ctx.fail(`cannot express output size ${oh}x${ow} from input ${h}x${w} with stride ${stride.join('x')}`);
  }
  const x = ctx.nchw(ctx.input(xi));
  const filter = ctx.weight(wi, [3, 0, 1, 2]);
  const bias = bi >= 0 && ctx.hasInput(bi) ? ctx.input(bi) : null;
  const attrs: Record<string, number[]> = { kernel_shape: [kh, kw], strides: stride, pads: [pads[0], pads[2], pads[1], pads[3]] };
  if (outputPadding.some((p) => p > 0)) attrs.output_padding = outputPadding;
  const y = ctx.op('ConvTranspose', bias ? [x, filter, bias] : [x, filter], attrs);
  ctx.output(0, ctx.nhwc(ctx.activation(y, act)));
}

export function transposeConv(ctx: ImportContext): void {
  const stride: [number, number] = [option(ctx, 'stride_h', 1), option(ctx, 'stride_w', 1)];
  transposed(ctx, 2, 1, 3, stride, option(ctx, 'padding', Padding.SAME), option(ctx, 'fused_activation_function'));
}

/**
 * MediaPipe's Convolution2DTransposeBias: inputs (x, filter OHWI, bias); its custom options are
 * the C struct TfLiteTransposeConvParams { int32 padding (1 SAME, 2 VALID); int32 stride_w; int32 stride_h }.
 */
export function convolution2dTransposeBias(ctx: ImportContext): void {
  const raw = ctx.current.customOptions;
  if (raw === undefined || raw.length < 12) ctx.fail('its custom options (padding and strides) are missing');
  const view = new DataView(raw!.buffer, raw!.byteOffset, raw!.byteLength);
  const padding = view.getInt32(0, true) === 2 ? Padding.VALID : Padding.SAME;
  const stride: [number, number] = [view.getInt32(8, true), view.getInt32(4, true)];
  if (!(stride[0] > 0 && stride[1] > 0)) ctx.fail(`has stride ${stride.join('x')}`);
  transposed(ctx, 0, 1, 2, stride, padding, 0);
}

function pool(ctx: ImportContext, opType: 'AveragePool' | 'MaxPool'): void {
  const [, h, w] = ctx.shapeOf(0);
  const kh = option(ctx, 'filter_height', 1);
  const kw = option(ctx, 'filter_width', 1);
  const { strides, pads } = spatialAttrs(ctx, h, w, kh, kw, false);
  finish(ctx, ctx.op(opType, [ctx.nchw(ctx.input(0))], { kernel_shape: [kh, kw], strides, pads }));
}

export const averagePool2d = (ctx: ImportContext) => pool(ctx, 'AveragePool');
export const maxPool2d = (ctx: ImportContext) => pool(ctx, 'MaxPool');
