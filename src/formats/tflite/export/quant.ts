/**
 * TFLite's int8 quantization spec, as the exporter applies it
 * (https://www.tensorflow.org/lite/performance/quantization_spec):
 * - activations: int8, per tensor, asymmetric (any zero point in [−128, 127]);
 * - weights: int8, symmetric (zero point 0, range ±127), per output channel for CONV_2D and
 *   TRANSPOSE_CONV (quantized_dimension 0) and DEPTHWISE_CONV_2D (quantized_dimension 3, the
 *   channel axis of its [1, H, W, C] filter); FULLY_CONNECTED and BATCH_MATMUL per tensor;
 * - biases: int32, zero point 0, scale = input scale × weight scale (per channel alike);
 * - LOGISTIC and SOFTMAX outputs have scale 1/256 and zero point −128, TANH 1/128 and 0;
 *   pooling, reshapes, transposes, pads, slices, gathers, resizes and CONCATENATION keep their
 *   input's parameters (the kernels check that in and out agree).
 */
import { paramsForRange, quantizeBias, quantizeWeights } from '../../../quantize/params.js';
import type { TfliteQuantization } from '../model.js';

export interface ActivationParams {
  scale: number;
  /** int8 zero point. */
  zeroPoint: number;
}

export function quantization(p: ActivationParams): TfliteQuantization {
  return { scale: Float32Array.of(p.scale), zeroPoint: [p.zeroPoint], quantizedDimension: 0 };
}

/** Asymmetric int8 parameters covering [lo, hi] (and 0). */
export function paramsForInt8Range(lo: number, hi: number): ActivationParams {
  const p = paramsForRange(lo, hi, 'int8', false);
  return { scale: p.scale, zeroPoint: p.zeroPoint };
}

/** Asymmetric int8 parameters covering a constant's values. */
export function paramsFromData(data: Float32Array): ActivationParams {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < lo) lo = data[i];
    if (data[i] > hi) hi = data[i];
  }
  return paramsForInt8Range(lo, hi);
}

/** Output parameters the spec fixes for an op, by builtin name. */
export const FIXED_OUTPUT: Readonly<Record<string, ActivationParams>> = {
  LOGISTIC: { scale: 1 / 256, zeroPoint: -128 },
  SOFTMAX: { scale: 1 / 256, zeroPoint: -128 },
  TANH: { scale: 1 / 128, zeroPoint: 0 },
};

export interface QuantizedWeights {
  bytes: Uint8Array;
  quantization: TfliteQuantization;
  scales: Float32Array;
}

/** Symmetric int8 weights (TFLite layout already), per channel along `axis` or per tensor. */
export function int8Weights(data: Float32Array, dims: readonly number[], axis: number | undefined): QuantizedWeights {
  const { values, scales } = quantizeWeights(data, dims, axis);
  return {
    bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    scales,
    quantization: { scale: scales, zeroPoint: Array.from(scales, () => 0), quantizedDimension: axis ?? 0 },
  };
}

/** int32 bias for an int8 layer: scale[c] = input scale × weight scale[c], zero point 0. */
export function int32Bias(
  bias: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): { bytes: Uint8Array; quantization: TfliteQuantization } {
  const perChannel = weightScales.length > 1;
  const { values, scales } = quantizeBias(bias, inputScale, weightScales, (i) => (perChannel ? i : 0));
  const used = perChannel ? scales : scales.subarray(0, 1);
  return {
    bytes: new Uint8Array(values.buffer),
    quantization: { scale: Float32Array.from(used), zeroPoint: Array.from(used, () => 0), quantizedDimension: 0 },
  };
}
