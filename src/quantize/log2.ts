/**
 * `log2` — the seed's log quantization (§4) of weights:
 *
 *   q = round(log2(|r| + 1)) · sign(r)
 *
 * Its exact inverse is r̂ = sign(q) · (2^|q| − 1): the formula maps |r| to the exponent of
 * |r| + 1, and 2^|q| − 1 undoes it wherever log2(|r| + 1) is an integer.
 *
 * Applied to raw weights (|r| ≪ 1 for most trained layers) the formula sends nearly everything to
 * q = 0 (|r| < √2 − 1 ≈ 0.41 rounds to exponent 0). So each tensor (or each output channel, with
 * perChannel) gets a scale s, and the formula runs on r/s:
 *
 *   s  = max|r| / (2^E − 1)                       E = LOG2_TOP_EXPONENT = 7
 *   q  = sign(r) · min(E, round(log2(|r|/s + 1)))    q ∈ {−7, …, 7}, stored as int8
 *   r̂  = sign(q) · (2^|q| − 1) · s
 *
 * The largest magnitude maps to the top exponent exactly (max|r|/s + 1 = 2^E), and the smallest
 * non-zero level is s = max|r|/127: weights below 0.41·s, 0.3 % of the largest, become 0.
 * The levels are 0, ±1, ±3, ±7, …, ±127 times s — 15 of them, a sign and a 3-bit exponent, so
 * the codes would fit int4; they are stored as int8, which every runtime reads.
 * `round` is to nearest; log2(|r|/s + 1) is never exactly halfway for a float input.
 *
 * At run time a standard-op subgraph expands the codes (onnxruntime folds it once, at load):
 *
 *   qf = Cast(q, float);  r̂ = Sign(qf) · (Pow(2, Abs(qf)) − 1) · s
 *
 * Every step is exact in float32 (|q| ≤ 7) except the final product with s, rounded once —
 * the same rounding log2Expand applies, so the model's weights equal log2Expand's bit for bit.
 * Biases stay float; activations stay float.
 */
import { modelStats } from '../eval/stats.js';
import type { Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
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
} from './weights.js';

/** The top exponent E: codes run over −E…E. */
export const LOG2_TOP_EXPONENT = 7;

/** The scale that maps the largest magnitude to the top exponent (1 for an all-zero tensor). */
export function log2Scale(maxAbs: number, top = LOG2_TOP_EXPONENT): number {
  const s = Math.fround(maxAbs / (2 ** top - 1));
  return s > 0 && Number.isFinite(s) ? s : 1;
}

/** q = sign(r) · min(E, round(log2(|r|/s + 1))). */
export function log2Quantize(r: number, s: number, top = LOG2_TOP_EXPONENT): number {
  const e = Math.min(top, Math.round(Math.log2(Math.abs(r) / s + 1)));
  return r < 0 ? -e : e;
}

/** r̂ = sign(q) · (2^|q| − 1) · s, in float32 as the expansion subgraph computes it. */
export function log2Expand(q: number, s: number): number {
  return Math.fround(Math.sign(q) * (2 ** Math.abs(q) - 1) * s);
}

/** Codes and scales of a tensor, per tensor (`axis` undefined) or per channel along `axis`. */
export function log2QuantizeTensor(
  data: Float32Array,
  dims: readonly number[],
  axis: number | undefined,
): { q: Int8Array; scales: Float32Array } {
  const scales = Float32Array.from(channelExtremes(data, dims, axis), ([lo, hi]) => log2Scale(Math.max(-lo, hi)));
  const channelOf = channelIndexer(dims, axis);
  const q = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) q[i] = log2Quantize(data[i], scales[channelOf(i)]);
  return { q, scales };
}

export async function log2QuantizeModel(model: Model, options: QuantizeOptions): Promise<QuantizeReport> {
  const scheme = 'log2';
  const t0 = performance.now();
  const weightBytesBefore = modelStats(model).weightBytes;
  const nodesBefore = countNodes(model);
  prepareForQuantization(model, options.optimize !== false);
  const { targets, float } = findWeightTargets(model, options.exclude);
  if (targets.length === 0) throw nothingToQuantize(scheme, float);
  const perChannel = options.perChannel ?? false;
  const edit = new GraphEditor(model);
  const tOptimized = performance.now();
  let two: Value | undefined;
  let one: Value | undefined;
  const done = new Map<Value, Value>();
  for (const t of targets) {
    let w = done.get(t.value);
    if (!w) {
      const dims = [...t.tensor.dims];
      const axis = perChannel ? t.channelAxis : undefined;
      const { q, scales } = log2QuantizeTensor(t.tensor.toFloat32(), dims, axis);
      const base = t.value.name;
      two ??= edit.initializer('log2_two', Tensor.from('float32', [], [2]));
      one ??= edit.initializer('log2_one', Tensor.from('float32', [], [1]));
      const f32 = { dtype: 'float32' as const, shape: dims };
      const codes = edit.initializer(`${base}_log2`, Tensor.from('int8', dims, q));
      const scale = edit.initializer(
        `${base}_log2_scale`,
        Tensor.from('float32', axis === undefined ? [] : broadcastDims(dims.length, axis, scales.length), scales),
      );
      const qf = edit.node('Cast', [codes], `${base}_log2_codes`, f32, { attrs: { to: 1 } });
      const abs = edit.node('Abs', [qf], `${base}_log2_abs`, f32);
      const pow = edit.node('Pow', [two, abs], `${base}_log2_pow`, f32);
      const mag = edit.node('Sub', [pow, one], `${base}_log2_magnitude`, f32);
      const sign = edit.node('Sign', [qf], `${base}_log2_sign`, f32);
      const signed = edit.node('Mul', [sign, mag], `${base}_log2_signed`, f32);
      w = edit.node('Mul', [signed, scale], `${base}_log2_expanded`, f32);
      done.set(t.value, w);
    }
    t.node.setInput(1, w);
  }
  const t1 = performance.now();
  return finish(model, {
    scheme,
    activations: 'float32',
    weights: `log2 exponents −${LOG2_TOP_EXPONENT}…${LOG2_TOP_EXPONENT} (int8)`,
    perChannel,
    quantized: countOps(targets.map((t) => t.node)),
    float,
    notes: [],
    weightBytesBefore,
    nodesBefore,
    t0,
    tOptimized,
    tCalibrated: t1,
  });
}
