/**
 * Layer weights and biases in each precision:
 * - fp32: float32 constants;
 * - fp16: float16 constants read through a DEQUANTIZE op (what TFLite's float16 models do: half
 *   the bytes, and XNNPACK folds the DEQUANTIZE away at load);
 * - dynamic: int8 symmetric weights read directly by the float CONV_2D / DEPTHWISE_CONV_2D /
 *   FULLY_CONNECTED (TFLite's hybrid kernels quantize the input on the fly); other layers' weights
 *   stay float;
 * - int8: int8 symmetric weights, per channel where the spec says so (quant.ts), and int32
 *   biases on the input × weight grid; a layer left in float keeps int8 weights behind a
 *   DEQUANTIZE.
 * The data arrives already in TFLite's layout.
 */
import { floatToHalf } from '../../../ir/float16.js';
import { Builtin, TensorType } from '../model.js';
import type { Kind, LowerContext } from './context.js';
import { int8Weights, int32Bias } from './quant.js';

export type LayerUse = 'conv' | 'depthwise' | 'fc' | 'tconv' | 'bmm';

/**
 * Per-channel axis of each layer's int8 filter (undefined: per tensor). FULLY_CONNECTED stays per
 * tensor, as the spec has it: XNNPACK (in the interpreter we verify on, and on phones) runs int8
 * dense layers only so, and a per-channel one would drop out of the delegate's partition.
 */
const INT8_AXIS: Record<LayerUse, number | undefined> = { conv: 0, depthwise: 3, fc: undefined, tconv: 0, bmm: undefined };
/** Per-channel axis of hybrid kernels' filters. */
const HYBRID_AXIS: Record<LayerUse, number | undefined> = { conv: 0, depthwise: 3, fc: undefined, tconv: undefined, bmm: undefined };
/** Layers with hybrid (int8 weight, float activation) kernels. */
const HYBRID = new Set<LayerUse>(['conv', 'depthwise', 'fc']);

export interface LayerWeights {
  tensor: number;
  /** int8 weights: the scale of each channel (length 1 per tensor). */
  scales?: Float32Array;
}

function floatBytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function layerWeights(
  ctx: LowerContext,
  name: string,
  data: Float32Array,
  dims: readonly number[],
  use: LayerUse,
  kind: Kind,
): LayerWeights {
  const precision = ctx.settings.precision;
  if (kind === 'int8' || (precision === 'dynamic' && HYBRID.has(use))) {
    const q = int8Weights(data, dims, kind === 'int8' ? INT8_AXIS[use] : HYBRID_AXIS[use]);
    const tensor = ctx.b.constant({ name, shape: dims, type: TensorType.INT8, quantization: q.quantization }, q.bytes);
    return { tensor, scales: q.scales };
  }
  if (precision === 'int8') {
    // A layer left in float inside an int8 model: its weights stay int8 on disk, read through a
    // DEQUANTIZE (what the QDQ model computes: the same integers, dequantized).
    const q = int8Weights(data, dims, INT8_AXIS[use]);
    const stored = ctx.b.constant({ name: `${name}/int8`, shape: dims, type: TensorType.INT8, quantization: q.quantization }, q.bytes);
    const tensor = ctx.temp(name, dims, 'float');
    ctx.op(Builtin.DEQUANTIZE, [stored], [tensor], undefined, 2);
    return { tensor };
  }
  if (precision === 'fp16') {
    const half = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) half[i] = floatToHalf(data[i]);
    const stored = ctx.b.constant({ name: `${name}/fp16`, shape: dims, type: TensorType.FLOAT16 }, new Uint8Array(half.buffer));
    const tensor = ctx.temp(name, dims, 'float');
    ctx.op(Builtin.DEQUANTIZE, [stored], [tensor]);
    return { tensor };
  }
  return { tensor: ctx.b.constant({ name, shape: dims, type: TensorType.FLOAT32 }, floatBytes(data)) };
}

/** A layer's bias: float32, or int32 on the input × weight grid for int8 layers. */
export function layerBias(
  ctx: LowerContext,
  name: string,
  bias: Float32Array,
  kind: Kind,
  inputTensor: number,
  weights: LayerWeights,
): number {
  if (kind === 'int8') {
    const inputScale = ctx.quantizationOf(inputTensor)?.scale[0];
    if (inputScale === undefined || !weights.scales) throw new Error('tflite export: int8 bias without input or weight scales');
    const q = int32Bias(bias, inputScale, weights.scales);
    return ctx.b.constant({ name, shape: [bias.length], type: TensorType.INT32, quantization: q.quantization }, q.bytes);
  }
  return ctx.b.constant({ name, shape: [bias.length], type: TensorType.FLOAT32 }, floatBytes(Float32Array.from(bias)));
}
