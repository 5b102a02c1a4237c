/**
 * Feeding a .tflite model what an ONNX model is fed, and reading its outputs back in the ONNX
 * model's terms: which input/output corresponds to which (by name, else by order), whether the
 * two lay a tensor out differently (NHWC in TFLite, NCHW in ONNX: the same dims permuted), and
 * int8/uint8 inputs and outputs (real = scale · (q − zero_point), TFLite's quantization spec).
 */
import { badInput } from '../errors.js';
import { isInteger } from '../ir/dtype.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { transposeTensor } from '../ops/shape.js';
import { invertPerm, isIdentityPerm } from '../passes/perm.js';
import { type QuantDType, qrange } from '../quantize/params.js';
import type { TfliteTensorInfo } from './tflite-runner.js';

export interface IoQuantization {
  scale: number;
  zeroPoint: number;
}

/** How the TFLite tensor lays out the reference's: `nhwc` puts the reference's axis 1 last. */
export type IoLayout = 'auto' | 'same' | 'nhwc';

export interface IoPair {
  tflite: TfliteTensorInfo;
  reference: string;
  /** TFLite axis i holds the reference's axis perm[i]; undefined until known (outputs of unknown shape). */
  perm?: number[];
  /** Present when the TFLite tensor is int8/uint8 with per-tensor quantization. */
  quantization?: IoQuantization;
}

/** Axis order of the reference's axes in a channels-last tensor: [0, 2, …, r−1, 1]. */
function channelsLast(rank: number): number[] {
  if (rank < 3) return Array.from({ length: rank }, (_, i) => i);
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1];
}

function fits(tflite: readonly number[], reference: Shape, perm: readonly number[]): boolean {
  return perm.every((p, i) => {
    const d = reference[p];
    return typeof d !== 'number' || d === tflite[i];
  });
}

/**
 * The permutation that maps the reference's dims onto the TFLite tensor's: identity when the
 * shapes fit as they are, channels-last otherwise (or when asked for with `nhwc`); undefined
 * when neither fits.
 */
export function layoutPerm(tflite: readonly number[], reference: Shape | undefined, layout: IoLayout = 'auto'): number[] | undefined {
  const rank = tflite.length;
  const identity = Array.from({ length: rank }, (_, i) => i);
  if (!reference) return layout === 'nhwc' ? channelsLast(rank) : identity;
  if (reference.length !== rank) return undefined;
  const last = channelsLast(rank);
  const order = layout === 'nhwc' ? [last, identity] : layout === 'same' ? [identity] : [identity, last];
  return order.find((p) => fits(tflite, reference, p));
}

/**
 * Pairs TFLite tensors with the reference's by name; the ones whose names differ pair up in
 * order. Both sides must have the same number.
 */
export function pairByName(
  tflite: readonly TfliteTensorInfo[],
  reference: readonly string[],
  what: string,
  file: string,
): Array<[TfliteTensorInfo, string]> {
  if (tflite.length !== reference.length) {
    throw badInput(
      `${file} has ${tflite.length} ${what}s (${tflite.map((t) => t.name).join(', ')}) but the reference has ${reference.length} (${reference.join(', ')})`,
    );
  }
  const byName = new Set(reference);
  const named = new Set(tflite.filter((t) => byName.has(t.name)).map((t) => t.name));
  const restRef = reference.filter((n) => !named.has(n));
  let k = 0;
  return tflite.map((t) => [t, named.has(t.name) ? t.name : restRef[k++]]);
}

function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Quantizes real values for an int8/uint8 TFLite input (round half away from zero, as TFLite does, then clamp). */
function quantizeInput(values: Float32Array, info: TfliteTensorInfo, q: IoQuantization): Tensor {
  const [lo, hi] = qrange(info.dtype as QuantDType);
  const out = info.dtype === 'int8' ? new Int8Array(values.length) : new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.min(hi, Math.max(lo, roundHalfAway(values[i] / q.scale) + q.zeroPoint));
  return Tensor.from(info.dtype, info.shape, out);
}

/** Real values of a quantized TFLite output. */
export function dequantize(t: Tensor, q: IoQuantization): Tensor {
  const src = t.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = q.scale * (Number(src[i]) - q.zeroPoint);
  return Tensor.from('float32', t.dims, out);
}

/** A reference-layout tensor as the TFLite input takes it (transposed, quantized). */
export function toTflite(t: Tensor, pair: IoPair): Tensor {
  const perm = pair.perm ?? t.dims.map((_, i) => i);
  const laid = isIdentityPerm(perm) ? t : transposeTensor(t, perm);
  if (pair.quantization) return quantizeInput(laid.toFloat32(), pair.tflite, pair.quantization);
  if (laid.dtype !== pair.tflite.dtype && isInteger(laid.dtype) && isInteger(pair.tflite.dtype)) {
    // ONNX indices are int64, TFLite's int32: the same small integers.
    return Tensor.from(pair.tflite.dtype, laid.dims, laid.toNumbers());
  }
  if (laid.dtype !== pair.tflite.dtype) {
    throw badInput(
      `input "${pair.tflite.name}" is ${pair.tflite.dtype} in the TFLite model but ${laid.dtype} in the reference, with no quantization to convert it`,
    );
  }
  if (shapeSize(laid.dims) !== shapeSize(pair.tflite.shape)) {
    throw badInput(`input "${pair.tflite.name}" has shape [${pair.tflite.shape}] in the TFLite model; the reference's is [${t.dims}]`);
  }
  return laid;
}

/** A TFLite output in the reference's layout and as real values. */
export function fromTflite(t: Tensor, pair: IoPair): Tensor {
  const real = pair.quantization
    ? dequantize(t, pair.quantization)
    : t.dtype === 'float32'
      ? t
      : Tensor.from('float32', t.dims, t.toFloat32());
  const perm = pair.perm ?? t.dims.map((_, i) => i);
  return isIdentityPerm(perm) ? real : transposeTensor(real, invertPerm(perm));
}
