/**
 * Conv → CONV_2D (filter [O, kh, kw, I]) or DEPTHWISE_CONV_2D (groups = input channels, filter
 * [1, kh, kw, O]); a grouped Conv in between becomes SPLIT → one CONV_2D per group →
 * CONCATENATION. ConvTranspose → TRANSPOSE_CONV (filter [O, kh, kw, I], output shape as an
 * input), with VALID padding and the output cropped at the end by the output shape, or SAME when
 * that is what the pads say. Input and output are NHWC; Relu/Relu6 after a Conv is fused.
 */
import type { Node, Value } from '../../../../ir/graph.js';
import type { Tensor } from '../../../../ir/tensor.js';
import { Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { NHWC, permuteFloats } from '../layout.js';
import { layerBias, layerWeights } from '../weights.js';
import { activationOnGrid, choosePadding, fuseActivation, input, refuse, window2d } from './common.js';

function convOptions(padding: number, strides: number[], dilations: number[], act: number): Record<string, number> {
  return {
    padding,
    stride_h: strides[0],
    stride_w: strides[1],
    dilation_h_factor: dilations[0],
    dilation_w_factor: dilations[1],
    fused_activation_function: act,
  };
}

/** NHWC input, explicitly padded first when SAME/VALID cannot express the pads. */
export function paddedInput(
  ctx: LowerContext,
  x: Value,
  kind: Kind,
  explicit: number[],
  padValue?: number,
): { tensor: number; hw: number[] } {
  const t = ctx.read(x, NHWC, kind);
  const [n, c, h, w] = ctx.shape(x);
  if (explicit.every((p) => p === 0)) return { tensor: t, hw: [h, w] };
  const hw = [h + explicit[0] + explicit[2], w + explicit[1] + explicit[3]];
  const params = kind === 'int8' ? ctx.paramsOf(x) : undefined;
  const out = ctx.temp(`${x.name}/padded`, [n, hw[0], hw[1], c], kind, params);
  const pads = ctx.int32Const(`${x.name}/pads`, [0, 0, explicit[0], explicit[2], explicit[1], explicit[3], 0, 0], [4, 2]);
  if (padValue === undefined) {
    ctx.op(Builtin.PAD, [t, pads], [out], { type: 'PadOptions', fields: {} });
  } else {
    const value =
      kind === 'int8'
        ? ctx.scalarInt8Raw(`${x.name}/pad_value`, -128, params)
        : ctx.floatConst(`${x.name}/pad_value`, Float32Array.of(Math.max(padValue, -3.4028234663852886e38)), []);
    ctx.op(Builtin.PADV2, [t, pads, value], [out], { type: 'PadV2Options', fields: {} });
  }
  return { tensor: out, hw };
}

function biasData(ctx: LowerContext, node: Node, channels: number): Float32Array {
  const b = node.input(2);
  if (!b) return new Float32Array(channels);
  return ctx.constant(b, 'bias', node).toFloat32();
}

export function lowerConv(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const w = ctx.constant(input(node, 1, 'weight'), 'weight', node);
  const xs = ctx.shape(x);
  if (xs.length !== 4 || w.dims.length !== 4) refuse(node, `only 2-D convolutions are exported (input rank ${xs.length})`);
  const group = node.int('group', 1);
  const fused = fuseActivation(ctx, node);
  const out = fused.out;
  const os = ctx.shape(out);
  const win = window2d(node, [w.dims[2], w.dims[3]], [xs[2], xs[3]]);
  const choice = choosePadding(win, [xs[2], xs[3]], [os[2], os[3]]);
  const kind: Kind = ctx.canInt8(x, out) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const code = activationOnGrid(ctx, fused.code, out, kind);
  const padded = paddedInput(ctx, x, kind, 'explicit' in choice ? choice.explicit : [0, 0, 0, 0]);
  const padding = 'padding' in choice ? choice.padding : 1;
  const bias = biasData(ctx, node, w.dims[0]);
  const depthwise = group > 1 && group === xs[1] && w.dims[1] === 1;
  if (depthwise) {
    // [O, 1, kh, kw] → [1, kh, kw, O]
    const filter = permuteFloats(w.toFloat32(), w.dims, [1, 2, 3, 0]);
    const dims = [1, w.dims[2], w.dims[3], w.dims[0]];
    const weights = layerWeights(ctx, `${node.name || out.name}/filter`, filter, dims, 'depthwise', kind);
    const b = layerBias(ctx, `${node.name || out.name}/bias`, bias, kind, padded.tensor, weights);
    const y = ctx.produce(out, NHWC, kind);
    const options = { ...convOptions(padding, win.strides, win.dilations, code), depth_multiplier: w.dims[0] / xs[1] };
    ctx.op(
      Builtin.DEPTHWISE_CONV_2D,
      [padded.tensor, weights.tensor, b],
      [y],
      { type: 'DepthwiseConv2DOptions', fields: options },
      kind === 'int8' ? 3 : 1,
    );
    return;
  }
  if (group === 1) {
    const filter = permuteFloats(w.toFloat32(), w.dims, [0, 2, 3, 1]);
    const dims = [w.dims[0], w.dims[2], w.dims[3], w.dims[1]];
    const weights = layerWeights(ctx, `${node.name || out.name}/filter`, filter, dims, 'conv', kind);
    const b = layerBias(ctx, `${node.name || out.name}/bias`, bias, kind, padded.tensor, weights);
    const y = ctx.produce(out, NHWC, kind);
    ctx.op(
      Builtin.CONV_2D,
      [padded.tensor, weights.tensor, b],
      [y],
      { type: 'Conv2DOptions', fields: convOptions(padding, win.strides, win.dilations, code) },
      kind === 'int8' ? 3 : 1,
    );
    return;
  }
  groupedConv(ctx, node, { x, w, out, group, bias, padded, padding, strides: win.strides, dilations: win.dilations, act: code, kind });
}

interface Grouped {
  x: Value;
  w: Tensor;
  out: Value;
  group: number;
  bias: Float32Array;
  padded: { tensor: number; hw: number[] };
  padding: number;
  strides: number[];
  dilations: number[];
  act: number;
  kind: Kind;
}

/** SPLIT the channels into groups, one CONV_2D each, CONCATENATION of the results. */
function groupedConv(ctx: LowerContext, node: Node, g: Grouped): void {
  const [n, c] = ctx.shape(g.x);
  const os = ctx.shape(g.out);
  const perIn = c / g.group;
  const perOut = g.w.dims[0] / g.group;
  if (!Number.isInteger(perIn) || !Number.isInteger(perOut) || g.w.dims[1] !== perIn)
    refuse(node, `group ${g.group} does not divide the channels`);
  const params = g.kind === 'int8' ? ctx.paramsOf(g.x) : undefined;
  const outParams = g.kind === 'int8' ? ctx.paramsOf(g.out) : undefined;
  const base = node.name || g.out.name;
  const parts = Array.from({ length: g.group }, (_, i) =>
    ctx.temp(`${base}/in${i}`, [n, g.padded.hw[0], g.padded.hw[1], perIn], g.kind, params),
  );
  ctx.op(Builtin.SPLIT, [ctx.int32Const(`${base}/split_axis`, [3], []), g.padded.tensor], parts, {
    type: 'SplitOptions',
    fields: { num_splits: g.group },
  });
  const filter = permuteFloats(g.w.toFloat32(), g.w.dims, [0, 2, 3, 1]);
  const per = filter.length / g.group;
  const outs: number[] = [];
  for (let i = 0; i < g.group; i++) {
    const dims = [perOut, g.w.dims[2], g.w.dims[3], perIn];
    const weights = layerWeights(ctx, `${base}/filter${i}`, filter.slice(i * per, (i + 1) * per), dims, 'conv', g.kind);
    const b = layerBias(ctx, `${base}/bias${i}`, g.bias.slice(i * perOut, (i + 1) * perOut), g.kind, parts[i], weights);
    const y = ctx.temp(`${base}/out${i}`, [n, os[2], os[3], perOut], g.kind, outParams);
    const options = convOptions(g.padding, g.strides, g.dilations, g.act);
    ctx.op(Builtin.CONV_2D, [parts[i], weights.tensor, b], [y], { type: 'Conv2DOptions', fields: options }, g.kind === 'int8' ? 3 : 1);
    outs.push(y);
  }
  const y = ctx.produce(g.out, NHWC, g.kind, outParams);
  ctx.op(Builtin.CONCATENATION, outs, [y], { type: 'ConcatenationOptions', fields: { axis: 3, fused_activation_function: 0 } });
}

export function lowerConvTranspose(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const w = ctx.constant(input(node, 1, 'weight'), 'weight', node);
  const xs = ctx.shape(x);
  if (xs.length !== 4) refuse(node, `only 2-D transposed convolutions are exported (input rank ${xs.length})`);
  if (node.int('group', 1) !== 1) refuse(node, 'grouped ConvTranspose has no TFLite builtin');
  const dil = node.ints('dilations', [1, 1]);
  if (dil.some((d) => d !== 1)) refuse(node, 'TRANSPOSE_CONV has no dilation');
  // Not fused: older interpreters ignore TRANSPOSE_CONV's fused_activation_function.
  const out = node.output(0);
  const code = 0;
  const os = ctx.shape(out);
  const strides = node.ints('strides', [1, 1]);
  const k = [w.dims[2], w.dims[3]];
  const autoPad = node.str('auto_pad', 'NOTSET');
  const pads = node.ints('pads', [0, 0, 0, 0]);
  // Output position o reads input i at o = i·s + kk − pad_top: with pad_top 0, VALID computes
  // exactly that, and the output shape input crops the end (and output_padding's extra rows).
  let padding = 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' || pads[0] !== 0 || pads[1] !== 0) {
    const same = [0, 1].every((i) => {
      const total = Math.max(0, (xs[2 + i] - 1) * strides[i] + k[i] - os[2 + i]);
      return (
        Math.floor(total / 2) === (autoPad === 'NOTSET' ? pads[i] : autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2))
      );
    });
    if (!same) refuse(node, `pads [${pads.join(',')}] match neither SAME nor VALID with a cropped end`);
    padding = 0;
  }
  const kind: Kind = ctx.canInt8(x, out) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const xin = ctx.read(x, NHWC, kind);
  // [I, O, kh, kw] → [O, kh, kw, I]
  const filter = permuteFloats(w.toFloat32(), w.dims, [1, 2, 3, 0]);
  const fdims = [w.dims[1], w.dims[2], w.dims[3], w.dims[0]];
  const base = node.name || out.name;
  const weights = layerWeights(ctx, `${base}/filter`, filter, fdims, 'tconv', kind);
  const bias = biasData(ctx, node, fdims[0]);
  const b = layerBias(ctx, `${base}/bias`, bias, kind, xin, weights);
  const shape = ctx.int32Const(`${base}/output_shape`, [os[0], os[2], os[3], os[1]]);
  const y = ctx.produce(out, NHWC, kind);
  const fields = { padding, stride_h: strides[0], stride_w: strides[1], fused_activation_function: code };
  ctx.op(Builtin.TRANSPOSE_CONV, [shape, weights.tensor, xin, b], [y], { type: 'TransposeConvOptions', fields }, kind === 'int8' ? 3 : 1);
}
