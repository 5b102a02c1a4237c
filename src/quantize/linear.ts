/**
 * `linear:<b>` — the seed's linear quantization (§4), for any bit width b from 2 to 8:
 *
 *   q = round((r − z_r) / (z_p − z_r) · (2^b − 1))            q ∈ {0, …, 2^b − 1}
 *   r̂ = z_r + q · scale,   scale = (z_p − z_r) / (2^b − 1)      (the formula's inverse)
 *
 * [z_r, z_p] is the range of the weights: of the whole tensor (the default, the seed's
 * per-tensor quantization) or of each output channel (perChannel): the minimum and maximum,
 * widened to contain 0 (a no-op for almost every weight tensor, which has both signs), so that
 * the zero point below lies on the b-bit grid. `round` is to nearest, ties to even, as ONNX's
 * QuantizeLinear rounds. The stored codes are the formula's q, from the exact z_r and z_p.
 *
 * In ONNX, DequantizeLinear computes (q − zero_point) · scale with an integer zero point:
 *
 *   zero_point = round(−z_r / scale)      (in [0, 2^b − 1], since z_r ≤ 0 ≤ z_p)
 *   (q − zero_point) · scale = z_r + q·scale − δ,   δ = z_r + zero_point·scale,  |δ| ≤ scale/2
 *
 * so DequantizeLinear alone is off the formula's r̂ by δ, one constant per tensor (per channel)
 * — the same shift on every weight of an output channel, which adds up over the channel's
 * inputs instead of averaging out: on the Fashion-MNIST CNN at 4 bits per channel it took top-1
 * from 91 % to 36 %. An Add of δ after the DequantizeLinear (omitted where every δ is 0) makes
 * the weights the formula's r̂ exactly, up to float32 rounding:
 *
 *   r̂ = DequantizeLinear(q, scale, zero_point) + δ = z_r + q·scale
 *
 * (Moving z_r onto the grid, z_r' = −zero_point·scale, would make δ = 0 with DequantizeLinear
 * alone, but changes q: that is what QuantizeLinear does, and what the activations below do.)
 *
 * Storage: b ≤ 4 → uint4 (two codes per byte; DequantizeLinear takes uint4 from opset 21, and
 * onnxruntime 1.30's CPU provider runs it per tensor, per axis and blocked — checked), so the
 * model is raised to opset 21; when it cannot be, uint8 (the report says so). 5 ≤ b ≤ 8 → uint8.
 *
 * Activations stay float (weights only) unless `activations` is set: then every activation
 * entering a rewritten Conv/Gemm/MatMul goes through QuantizeLinear → DequantizeLinear on a b-bit
 * grid from calibration. QuantizeLinear computes q = round(x/scale) + zero_point at run time:
 * the formula's q for the calibrated range with z_r moved onto the grid (z_r' =
 * −zero_point·scale, less than half a step from the calibrated minimum), so 0 stays exact.
 * The codes are stored as uint8 at every b — onnxruntime 1.30's QDQ propagation moves a uint4
 * DequantizeLinear behind a MaxPool, which has no uint4 kernel, and refuses the model — and for
 * b < 8 a Clip to the grid's range comes first, since QuantizeLinear saturates only at 0 and 255.
 * Biases stay float, so onnxruntime runs these graphs in float with the values on b-bit grids:
 * a simulation of b-bit arithmetic (the uint8/int8 schemes are the ones that run in int8).
 */
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import type { Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantValue } from '../passes/match.js';
import { calibrate } from './calibrate.js';
import { roundHalfEven } from './params.js';
import type { QuantizeOptions, QuantizeReport } from './schemes.js';
import { prepareForQuantization } from './static.js';
import {
  broadcastDims,
  channelExtremes,
  channelIndexer,
  countNodes,
  countOps,
  findWeightTargets,
  finish,
  GraphEditor,
  nothingToQuantize,
  pack4,
  raiseOpset,
} from './weights.js';

export const LINEAR_MIN_BITS = 2;
export const LINEAR_MAX_BITS = 8;

/** The bit width of `linear:<b>`; a one-line bad-input error for anything but a whole number from 2 to 8. */
export function parseLinearBits(param: string | undefined): number {
  const bits = param !== undefined && /^\d+$/.test(param) ? Number(param) : Number.NaN;
  if (!(bits >= LINEAR_MIN_BITS && bits <= LINEAR_MAX_BITS)) {
    throw badInput(`--scheme linear:${param ?? ''}: the bit width must be a whole number from ${LINEAR_MIN_BITS} to ${LINEAR_MAX_BITS}`);
  }
  return bits;
}

export interface LinearGrid {
  bits: number;
  /** z_r and z_p: the range, widened to contain 0. */
  lo: number;
  hi: number;
  /** (z_p − z_r) / (2^b − 1), rounded to float32 as stored. */
  scale: number;
  /** round(−z_r / scale), in [0, 2^b − 1]. */
  zeroPoint: number;
}

/** The grid of a range [min, max] at b bits. An all-zero range gets scale 1 and zero point 0. */
export function linearGrid(min: number, max: number, bits: number): LinearGrid {
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw badInput(`cannot quantize the range [${min}, ${max}]`);
  const levels = 2 ** bits - 1;
  if (!(hi > lo)) return { bits, lo: 0, hi: 0, scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / levels);
  const zeroPoint = Math.min(levels, Math.max(0, roundHalfEven(-lo / scale)));
  return { bits, lo, hi, scale, zeroPoint };
}

/** The seed's formula: q = round((r − z_r) / (z_p − z_r) · (2^b − 1)), kept in [0, 2^b − 1]. */
export function linearQuantize(r: number, g: LinearGrid): number {
  if (!(g.hi > g.lo)) return 0;
  const levels = 2 ** g.bits - 1;
  const q = roundHalfEven(((r - g.lo) / (g.hi - g.lo)) * levels);
  return Math.min(levels, Math.max(0, q));
}

/** δ = z_r + zero_point·scale, the constant that turns DequantizeLinear's output into z_r + q·scale (float32). */
export function linearOffset(g: LinearGrid): number {
  return Math.fround(g.lo + g.zeroPoint * g.scale);
}

/** The weight the model computes from a stored q: DequantizeLinear's (q − zero_point)·scale, plus δ, in float32. */
export function linearDequantize(q: number, g: LinearGrid): number {
  return Math.fround(Math.fround((q - g.zeroPoint) * g.scale) + linearOffset(g));
}

/** Quantizes a tensor with the formula, per tensor (`axis` undefined) or per channel along `axis`. */
export function linearQuantizeTensor(
  data: Float32Array,
  dims: readonly number[],
  axis: number | undefined,
  bits: number,
): { q: Uint8Array; grids: LinearGrid[] } {
  const grids = channelExtremes(data, dims, axis).map(([lo, hi]) => linearGrid(lo, hi, bits));
  const channelOf = channelIndexer(dims, axis);
  const q = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) q[i] = linearQuantize(data[i], grids[channelOf(i)]);
  return { q, grids };
}

function isActivation(v: Value | null): v is Value {
  return !!v && v.type?.kind === 'tensor' && v.type.dtype === 'float32' && constantValue(v) === undefined;
}

export async function linearQuantizeModel(model: Model, options: QuantizeOptions, param: string | undefined): Promise<QuantizeReport> {
  const bits = parseLinearBits(param);
  const scheme = `linear:${bits}`;
  const levels = 2 ** bits - 1;
  if (options.activations && !options.calib) {
    throw badInput(`--scheme ${scheme} --activations calibrates activations: give calibration data (--calib)`);
  }
  const t0 = performance.now();
  const weightBytesBefore = modelStats(model).weightBytes;
  const nodesBefore = countNodes(model);
  prepareForQuantization(model, options.optimize !== false);
  const found = findWeightTargets(model, options.exclude);
  if (found.targets.length === 0) throw nothingToQuantize(scheme, found.float);
  const notes: string[] = [];
  let storage: 'uint4' | 'uint8' = 'uint8';
  if (bits <= 4) {
    const why = raiseOpset(model, 21);
    if (why) notes.push(`${bits}-bit codes stored as uint8: ${why}; uint4 needs opset 21`);
    else storage = 'uint4';
  }
  const { targets, float } = findWeightTargets(model, options.exclude);
  const perChannel = options.perChannel ?? false;
  const edit = new GraphEditor(model);
  const codes = (values: ArrayLike<number>, dims: readonly number[]): Tensor =>
    storage === 'uint4' ? Tensor.fromBytes('uint4', dims, pack4(values)) : Tensor.from('uint8', dims, Uint8Array.from(values));
  const tOptimized = performance.now();

  // Activations: a b-bit Q → DQ pair on each float activation a rewritten node reads.
  let calibration: QuantizeReport['calibration'];
  if (options.activations && options.calib) {
    const inputs = [...new Set(targets.map((t) => t.node.input(0)).filter(isActivation))];
    const method = options.method ?? 'minmax';
    const cal = await calibrate(model, inputs, options.calib, {
      method,
      observer: { dtype: 'uint8', symmetric: false, percentile: options.percentile },
      backend: options.backend,
      calibSize: options.calibSize,
      batchSize: options.batchSize,
      threads: options.threads,
      onProgress: options.onProgress,
    });
    calibration = {
      data: options.calib.name,
      method,
      samples: cal.samples,
      batches: cal.batches,
      ms: cal.ms,
      inferenceMs: cal.inferenceMs,
    };
    if (method === 'entropy' || method === 'mse') notes.push(`calibration method ${method} chose its ranges for an 8-bit grid`);
    for (const x of inputs) {
      const [lo, hi] = cal.ranges.get(x) ?? [0, 0];
      const g = linearGrid(lo, hi, bits);
      const shape = x.type?.kind === 'tensor' ? x.type.shape : undefined;
      const scale = edit.initializer(`${x.name}_scale`, Tensor.from('float32', [], [g.scale]));
      const zp = edit.initializer(`${x.name}_zero_point`, Tensor.from('uint8', [], [g.zeroPoint]));
      let src = x;
      if (bits < 8) {
        // QuantizeLinear saturates at uint8's 255: clip to the b-bit grid's range first.
        const min = edit.initializer(`${x.name}_clip_min`, Tensor.from('float32', [], [Math.fround(-g.zeroPoint * g.scale)]));
        const max = edit.initializer(`${x.name}_clip_max`, Tensor.from('float32', [], [Math.fround((levels - g.zeroPoint) * g.scale)]));
        src = edit.node('Clip', [x, min, max], `${x.name}_clipped`, { dtype: 'float32', shape });
      }
      const q = edit.node('QuantizeLinear', [src, scale, zp], `${x.name}_quantized`, { dtype: 'uint8', shape });
      const dq = edit.node('DequantizeLinear', [q, scale, zp], `${x.name}_dequantized`, { dtype: 'float32', shape });
      for (const t of targets) if (t.node.input(0) === x) t.node.setInput(0, dq);
    }
  }
  const tCalibrated = performance.now();

  // Weights: the formula's codes behind a DequantizeLinear, plus δ; shared weights are rewritten once.
  const done = new Map<Value, Value>();
  for (const t of targets) {
    const axis = perChannel ? t.channelAxis : undefined;
    let w = done.get(t.value);
    if (!w) {
      const dims = [...t.tensor.dims];
      const base = t.value.name;
      const { q, grids } = linearQuantizeTensor(t.tensor.toFloat32(), dims, axis, bits);
      const paramDims = axis === undefined ? [] : [grids.length];
      const scales = Tensor.from(
        'float32',
        paramDims,
        grids.map((g) => g.scale),
      );
      const zeroPoints = codes(
        grids.map((g) => g.zeroPoint),
        paramDims,
      );
      const inputs = [
        edit.initializer(`${base}_quantized`, codes(q, dims)),
        edit.initializer(`${base}_scale`, scales),
        edit.initializer(`${base}_zero_point`, zeroPoints),
      ];
      const f32 = { dtype: 'float32' as const, shape: dims };
      w = edit.node('DequantizeLinear', inputs, `${base}_dequantized`, f32, axis === undefined ? {} : { attrs: { axis } });
      const offsets = grids.map(linearOffset);
      if (offsets.some((d) => d !== 0)) {
        const offsetDims = axis === undefined ? [] : broadcastDims(dims.length, axis, grids.length);
        const delta = edit.initializer(`${base}_offset`, Tensor.from('float32', offsetDims, offsets));
        w = edit.node('Add', [w, delta], `${base}_linear`, f32);
      }
      done.set(t.value, w);
    }
    t.node.setInput(1, w);
  }
  return finish(model, {
    scheme,
    activations: options.activations ? `${bits}-bit linear (uint8)` : 'float32',
    weights: `${bits}-bit linear (${storage})`,
    perChannel,
    quantized: countOps(targets.map((t) => t.node)),
    float,
    notes,
    weightBytesBefore,
    nodesBefore,
    t0,
    tOptimized,
    tCalibrated,
    ...(calibration ? { calibration } : {}),
  });
}
