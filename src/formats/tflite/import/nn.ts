/**
 * Dense and normalising layers: FULLY_CONNECTED, SOFTMAX / LOG_SOFTMAX, BATCH_MATMUL,
 * L2_NORMALIZATION, and the resize and depth/space ops (run in NCHW like the convolutions).
 */
import { type ImportContext, option } from './context.js';

export function fullyConnected(ctx: ImportContext): void {
  const [units, depth] = ctx.shapeOf(1);
  if (depth === undefined) ctx.fail(`has weights of shape [${ctx.shapeOf(1).join(', ')}], expected [units, depth]`);
  const flat = ctx.op('Reshape', [ctx.input(0), ctx.int64([-1, depth])]);
  const weights = ctx.input(1);
  const bias = ctx.hasInput(2) ? ctx.input(2) : null;
  let y = ctx.op('Gemm', bias ? [flat, weights, bias] : [flat, weights], { transB: 1 });
  y = ctx.activation(y, option(ctx, 'fused_activation_function'));
  const out = ctx.outputShape(0);
  if (out.length !== 2 || out[1] !== units) y = ctx.op('Reshape', [y, ctx.int64(out)]);
  ctx.output(0, y);
}

export function softmax(ctx: ImportContext): void {
  const beta = option(ctx, 'beta', 1);
  const x = beta === 1 ? ctx.input(0) : ctx.op('Mul', [ctx.input(0), ctx.float(beta)]);
  ctx.output(0, ctx.op('Softmax', [x], { axis: -1 }));
}

export function logSoftmax(ctx: ImportContext): void {
  ctx.output(0, ctx.op('LogSoftmax', [ctx.input(0)], { axis: -1 }));
}

export function batchMatmul(ctx: ImportContext): void {
  const side = (i: number, adjoint: number) => {
    const x = ctx.input(i);
    const rank = ctx.shapeOf(i).length;
    if (!adjoint) return x;
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    return ctx.op('Transpose', [x], { perm });
  };
  ctx.output(0, ctx.op('MatMul', [side(0, option(ctx, 'adj_x')), side(1, option(ctx, 'adj_y'))]));
}

/** x / sqrt(max(Σx², ε)) over the last axis; TFLite's kernel uses ε = 1e-6. */
export function l2Normalization(ctx: ImportContext): void {
  const x = ctx.input(0);
  const rank = ctx.shapeOf(0).length;
  const sum = ctx.op('ReduceSum', [ctx.op('Mul', [x, x]), ctx.int64([rank - 1])], { keepdims: 1 });
  const norm = ctx.op('Sqrt', [ctx.op('Max', [sum, ctx.float(1e-6)])]);
  ctx.output(0, ctx.op('Div', [x, norm]));
}

function resize(ctx: ImportContext, mode: 'linear' | 'nearest'): void {
  const [n, , , c] = ctx.shapeOf(0);
  const [oh, ow] = ctx.ints(1, 'size');
  const alignCorners = option(ctx, 'align_corners');
  const halfPixel = option(ctx, 'half_pixel_centers');
  const attrs: Record<string, string> = { mode };
  if (mode === 'linear') {
    attrs.coordinate_transformation_mode = alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric';
  } else {
    attrs.coordinate_transformation_mode = alignCorners ? 'align_corners' : halfPixel ? 'tf_half_pixel_for_nn' : 'asymmetric';
    attrs.nearest_mode = alignCorners ? 'round_prefer_ceil' : 'floor';
  }
  const y = ctx.op('Resize', [ctx.nchw(ctx.input(0)), null, null, ctx.int64([n, c, oh, ow])], attrs);
  ctx.output(0, ctx.nhwc(y));
}

export const resizeBilinear = (ctx: ImportContext) => resize(ctx, 'linear');
export const resizeNearest = (ctx: ImportContext) => resize(ctx, 'nearest');

/** TFLite's DEPTH_TO_SPACE orders the block like ONNX's DCR mode. */
export function depthToSpace(ctx: ImportContext): void {
  const y = ctx.op('DepthToSpace', [ctx.nchw(ctx.input(0))], { blocksize: option(ctx, 'block_size', 1), mode: 'DCR' });
  ctx.output(0, ctx.nhwc(y));
}

export function spaceToDepth(ctx: ImportContext): void {
  const y = ctx.op('SpaceToDepth', [ctx.nchw(ctx.input(0))], { blocksize: option(ctx, 'block_size', 1) });
  ctx.output(0, ctx.nhwc(y));
}
