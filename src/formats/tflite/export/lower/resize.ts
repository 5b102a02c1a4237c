/**
 * Resize (and opset-9 Upsample) of H and W → RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR on NHWC.
 * TFLite has two flags, align_corners and half_pixel_centers; ONNX has a coordinate mode and,
 * for nearest, a rounding mode. Bilinear maps modes one to one (half_pixel, and
 * pytorch_half_pixel for outputs longer than 1 → half_pixel_centers; align_corners →
 * align_corners; asymmetric → neither). For nearest the source index of every output row and
 * column is computed both ways (ONNX's formula, TFLite's kernel formula) for each flag setting,
 * and the setting that picks the same pixels everywhere is used — so `asymmetric` + `floor`,
 * half-pixel + round_prefer_ceil and ×2 upsampling with round_prefer_floor all export exactly.
 */
import type { Node } from '../../../../ir/graph.js';
import { Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { NHWC } from '../layout.js';
import { input, refuse } from './common.js';

type Flags = { align_corners: boolean; half_pixel_centers: boolean };

function onnxCoordinate(mode: string, x: number, scale: number, inSize: number, outSize: number): number {
  switch (mode) {
    case 'half_pixel':
      return (x + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel':
      return outSize > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      return outSize > 1 ? (x * (inSize - 1)) / (outSize - 1) : 0;
    case 'asymmetric':
      return x / scale;
    default:
      return Number.NaN;
  }
}

function onnxRound(mode: string, x: number): number {
  switch (mode) {
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    case 'round_prefer_ceil':
      return Math.floor(x + 0.5);
    default:
      // round_prefer_floor
      return Math.ceil(x - 0.5);
  }
}

/** TFLite's nearest-neighbour source index (reference kernel's formula, float32 arithmetic). */
function tfliteNearest(x: number, inSize: number, outSize: number, f: Flags): number {
  const scale = Math.fround(f.align_corners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize);
  const offset = f.half_pixel_centers ? 0.5 : 0;
  const pos = Math.fround((x + offset) * scale);
  let v = Math.min(f.align_corners ? Math.round(pos) : Math.floor(pos), inSize - 1);
  if (f.half_pixel_centers) v = Math.max(0, v);
  return v;
}

function nearestFlags(node: Node, inHW: number[], outHW: number[], scales: number[]): Flags | undefined {
  const coord = node.str('coordinate_transformation_mode', 'half_pixel');
  const rounding = node.str('nearest_mode', 'round_prefer_floor');
  const options: Flags[] = [
    { align_corners: false, half_pixel_centers: false },
    { align_corners: false, half_pixel_centers: true },
    { align_corners: true, half_pixel_centers: false },
  ];
  return options.find((f) =>
    [0, 1].every((i) => {
      for (let x = 0; x < outHW[i]; x++) {
        const want = Math.max(0, Math.min(inHW[i] - 1, onnxRound(rounding, onnxCoordinate(coord, x, scales[i], inHW[i], outHW[i]))));
        if (want !== tfliteNearest(x, inHW[i], outHW[i], f)) return false;
      }
      return true;
    }),
  );
}

function bilinearFlags(node: Node, outHW: number[]): Flags | undefined {
  const coord = node.str('coordinate_transformation_mode', 'half_pixel');
  if (coord === 'half_pixel' || (coord === 'pytorch_half_pixel' && outHW.every((d) => d > 1)))
    return { align_corners: false, half_pixel_centers: true };
  if (coord === 'align_corners') return { align_corners: true, half_pixel_centers: false };
  if (coord === 'asymmetric') return { align_corners: false, half_pixel_centers: false };
  return undefined;
}

export function lowerResize(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const xs = ctx.shape(x);
  const os = ctx.shape(out);
  if (xs.length !== 4 || xs[0] !== os[0] || xs[1] !== os[1]) refuse(node, 'only resizing H and W of an NCHW tensor is exported');
  const mode = node.str('mode', 'nearest');
  // The scales ONNX computes with: given ones (Upsample, or Resize's scales input), else out/in.
  const scalesInput = node.opType === 'Upsample' ? node.input(1) : node.input(2);
  const given = scalesInput && ctx.isConstant(scalesInput) ? scalesInput.initializer?.toNumbers() : undefined;
  const scales = given && given.length === 4 ? [given[2], given[3]] : [os[2] / xs[2], os[3] / xs[3]];
  const inHW = [xs[2], xs[3]];
  const outHW = [os[2], os[3]];
  if (node.int('antialias', 0) === 1 && outHW.some((d, i) => d < inHW[i])) refuse(node, 'antialiased downscaling has no TFLite builtin');
  let flags: Flags | undefined;
  if (mode === 'nearest') flags = nearestFlags(node, inHW, outHW, scales);
  else if (mode === 'linear' || mode === 'bilinear') {
    if (scales.some((s, i) => Math.abs(s - outHW[i] / inHW[i]) > 1e-6 * s))
      refuse(node, 'linear resizing with scales that do not match the output size');
    flags = bilinearFlags(node, outHW);
  } else refuse(node, `mode "${mode}" has no TFLite builtin`);
  if (!flags) {
    refuse(
      node,
      `coordinate_transformation_mode "${node.str('coordinate_transformation_mode', 'half_pixel')}" with mode "${mode}" has no TFLite equivalent`,
    );
  }
  const kind: Kind = ctx.canInt8(x) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t = ctx.read(x, NHWC, kind);
  const y = ctx.produce(out, NHWC, kind, kind === 'int8' ? ctx.paramsOf(x) : undefined);
  const size = ctx.int32Const(`${node.name || out.name}/size`, outHW);
  if (mode === 'nearest') ctx.op(Builtin.RESIZE_NEAREST_NEIGHBOR, [t, size], [y], { type: 'ResizeNearestNeighborOptions', fields: flags });
  else ctx.op(Builtin.RESIZE_BILINEAR, [t, size], [y], { type: 'ResizeBilinearOptions', fields: flags });
}
