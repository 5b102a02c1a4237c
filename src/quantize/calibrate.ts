/**
 * Calibration: run the float model over sample data and let one observer per tensor pick its
 * range. The tensors are watched on a copy of the model that runs in one onnxruntime session,
 * batch by batch, and computes what observers need itself, so little crosses into JavaScript:
 * - extremes: GlobalMaxPool (rank 3–4, which onnxruntime runs in its blocked NCHWc layout
 *   without converting back) or ReduceMax; the minimum as the maximum of Neg(x), skipped where
 *   the tensor cannot be negative (ReLU, Sigmoid, … outputs: the grid includes 0 anyway);
 * - values, for histogram methods: every k-th element (k a prime, so the sample does not lock
 *   onto a row or channel) of tensors larger than SAMPLE_BUDGET elements per sample. Copying
 *   whole activations out of onnxruntime cost ten times the inference itself on MobileNetV2; a
 *   strided sample of 16K elements per image still gives each histogram millions of values.
 * Only these outputs are fetched, so onnxruntime skips what feeds nothing else.
 */
import { type Batch, type Dataset, sampleOrder } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Graph, Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantValue } from '../passes/match.js';
import type { Backend } from '../runtime/backend.js';
import { type CalibrationMethod, createObserver, extremes, type Observer, type ObserverOptions } from './observers.js';

export const DEFAULT_CALIB_SIZE = 256;
/**
 * Small batches: the watched copy keeps more activations alive than the float model (onnxruntime
 * schedules the small reductions late), so larger batches touch more fresh memory. Measured on
 * MobileNetV2, 256 images: quantize took 1.50x / 1.74x / 1.96x the float model's inference at
 * batch 8 / 16 / 32.
 */
export const DEFAULT_CALIB_BATCH = 8;
/** Elements per sample a histogram observer receives from one tensor, at most. */
export const SAMPLE_BUDGET = 16384;
const STRIDES = [1, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093];

export interface CalibrateOptions {
  method: CalibrationMethod;
  observer: ObserverOptions;
  backend: Backend;
  /** Samples to use (default 256), taken in a seeded shuffled order so classes mix. */
  calibSize?: number;
  batchSize?: number;
  threads?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface CalibrationResult {
  /** Chosen range per observed value (values of the model given, not of the copy). */
  ranges: Map<Value, [number, number]>;
  samples: number;
  batches: number;
  /** Wall time of the whole calibration, and of the session's runs alone. */
  ms: number;
  inferenceMs: number;
}

interface Watch {
  value: Value;
  observer: Observer;
  /** Outputs of the calibration copy; all undefined for the fed input, which is observed directly. */
  max?: string;
  /** Maximum of −x; undefined when the tensor cannot be negative. */
  negMax?: string;
  values?: string;
}

/** The model's single fed input (calibration from a dataset feeds exactly one). */
export function singleInput(model: Model): Value {
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) {
    throw badInput(`calibration feeds one input; the model has ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`);
  }
  return inputs[0];
}

const NON_NEGATIVE_OPS = new Set(['Relu', 'Sigmoid', 'HardSigmoid', 'Softmax', 'Abs', 'Exp', 'Sqrt', 'Softplus']);
/** Ops whose output is non-negative when their first input is. */
const KEEPS_SIGN_OPS = new Set([
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Reshape',
  'Flatten',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Slice',
  'Gather',
  'Expand',
  'Tile',
  'ReduceMax',
  'ReduceMean',
  'DepthToSpace',
  'SpaceToDepth',
]);
/** Ops whose output is non-negative when all their inputs are. */
const ALL_INPUTS_OPS = new Set(['Add', 'Mul', 'Concat', 'Max', 'Min']);

/** Whether a tensor provably holds no negative value (so its minimum need not be measured). */
export function nonNegative(v: Value, memo = new Map<Value, boolean>()): boolean {
  const known = memo.get(v);
  if (known !== undefined) return known;
  memo.set(v, false);
  const c = constantValue(v);
  let result = false;
  if (c) {
    result = c.dtype === 'float32' && c.toFloat32().every((x) => x >= 0);
  } else {
    const p = v.producer;
    if (p && (p.domain === '' || p.domain === 'ai.onnx')) {
      if (NON_NEGATIVE_OPS.has(p.opType)) result = true;
      else if (p.opType === 'Clip') {
        const lo = p.input(1) ? constantValue(p.input(1)) : undefined;
        result = (lo !== undefined && lo.size === 1 && lo.scalarValue() >= 0) || nonNegative(p.input(0) as Value, memo);
      } else if (p.opType === 'Resize') result = p.str('mode', 'nearest') !== 'cubic' && nonNegative(p.input(0) as Value, memo);
      else if (KEEPS_SIGN_OPS.has(p.opType)) result = !!p.input(0) && nonNegative(p.input(0) as Value, memo);
      else if (ALL_INPUTS_OPS.has(p.opType)) result = p.inputs.every((x) => !x || nonNegative(x, memo));
    }
  }
  memo.set(v, result);
  return result;
}

/** A Graph helper: a node with one output, typed. */
function op(g: Graph, type: string, inputs: Value[], name: string, attrs: Array<[string, { type: 'int'; value: number }]> = []): Value {
  const n = g.addNode(type, inputs, [name], { attrs });
  return n.output();
}

function int64(g: Graph, name: string, values: number[]): Value {
  return g.addInitializer(name, Tensor.from('int64', [values.length], values));
}

/** Max over all elements: per-channel GlobalMaxPool for rank 3–4 (cheap in onnxruntime's layout), else ReduceMax. */
function maxOf(g: Graph, x: Value, name: string): Value {
  const rank = x.type?.kind === 'tensor' ? x.type.shape?.length : undefined;
  if (rank === 3 || rank === 4) return op(g, 'GlobalMaxPool', [x], name);
  return op(g, 'ReduceMax', [x], name, [['keepdims', { type: 'int', value: 0 }]]);
}

/** Elements per sample (dims after the batch), when known. */
function sampleSize(v: Value): number | undefined {
  const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
  if (!shape || shape.length === 0) return undefined;
  let n = 1;
  for (const d of shape.slice(1)) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

/** The copy of the model that outputs what the observers need. */
function calibrationModel(model: Model, watches: Watch[], wantValues: boolean): Model {
  const copy = readOnnx(writeOnnx(model).model);
  const g = copy.graph;
  const byName = new Map<string, Value>();
  for (const v of g.inputs) byName.set(v.name, v);
  for (const n of g.nodes) for (const o of n.outputs) if (o) byName.set(o.name, o);
  const input = singleInput(copy);
  const memo = new Map<Value, boolean>();
  // The model's own outputs are never fetched; the watches are the outputs.
  const original = g.outputs.splice(0, g.outputs.length);
  for (const w of watches) {
    const v = byName.get(w.value.name);
    if (!v) throw new Error(`calibration: tensor ${w.value.name} is not in the model`);
    if (v === input) continue;
    const max = maxOf(g, v, `${v.name}__max`);
    g.addOutput(max);
    w.max = max.name;
    if (!nonNegative(v, memo)) {
      const negMax = maxOf(g, op(g, 'Neg', [v], `${v.name}__neg`), `${v.name}__negmax`);
      g.addOutput(negMax);
      w.negMax = negMax.name;
    }
    if (!wantValues) continue;
    const per = sampleSize(v);
    const stride = per === undefined ? 13 : (STRIDES.find((s) => per / s <= SAMPLE_BUDGET) ?? STRIDES[STRIDES.length - 1]);
    let sample = v;
    if (stride > 1) {
      const flat = g.addNode('Reshape', [v, int64(g, `${v.name}__flat_shape`, [-1])], [`${v.name}__flat`]).output();
      const ints = (suffix: string, n: number): Value => int64(g, `${v.name}__${suffix}`, [n]);
      sample = g
        .addNode('Slice', [flat, ints('start', 0), ints('end', 2 ** 62), ints('axis', 0), ints('step', stride)], [`${v.name}__sample`])
        .output();
    }
    if (!g.outputs.includes(sample)) g.addOutput(sample);
    w.values = sample.name;
  }
  // A model must have an output, even when only its input is watched.
  if (g.outputs.length === 0) g.addOutput(original[0]);
  // Outputs need types in the file; ORT infers the rest.
  for (const o of g.outputs) if (!o.type) o.type = { kind: 'tensor', dtype: 'float32' };
  return copy;
}

/** Batch size for a model whose input fixes it, else the requested one. */
function batchSizeFor(input: Value, requested: number): { size: number; fixed: boolean } {
  const t = input.type;
  const d = t?.kind === 'tensor' ? t.shape?.[0] : undefined;
  return typeof d === 'number' ? { size: d, fixed: true } : { size: requested, fixed: false };
}

/** Pads a short batch to a fixed batch size by repeating its last sample. */
function pad(t: Tensor, size: number): Tensor {
  const n = t.dims[0];
  if (n === size) return t;
  const per = t.size / n;
  const src = t.toFloat32();
  const out = new Float32Array(size * per);
  out.set(src);
  for (let i = n; i < size; i++) out.set(src.subarray((n - 1) * per, n * per), i * per);
  return Tensor.from('float32', [size, ...t.dims.slice(1)], out);
}

/** Starts loading a batch; a failure surfaces when it is awaited, never as an unhandled rejection. */
function prefetch(data: Dataset, indices: Int32Array): Promise<Batch> {
  const p = data.batch(indices);
  p.catch(() => undefined);
  return p;
}

function largest(t: Tensor): number {
  const d = t.data as Float32Array;
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < d.length; i++) if (d[i] > m) m = d[i];
  return m;
}

export async function calibrate(
  model: Model,
  values: readonly Value[],
  data: Dataset,
  options: CalibrateOptions,
): Promise<CalibrationResult> {
  const t0 = performance.now();
  if (data.size === 0) throw badInput(`${data.name}: the calibration data is empty`);
  const input = singleInput(model);
  const watches: Watch[] = values.map((value) => ({ value, observer: createObserver(options.method, options.observer) }));
  const wantValues = watches.some((w) => w.observer.needsValues);
  const copy = calibrationModel(model, watches, wantValues);
  const fetch = watches.flatMap((w) => [w.max, w.negMax, w.values].filter((n): n is string => n !== undefined));
  const { size: batchSize, fixed } = batchSizeFor(input, options.batchSize ?? DEFAULT_CALIB_BATCH);
  const order = sampleOrder(data.size, { shuffle: true, seed: options.seed ?? 0, limit: options.calibSize ?? DEFAULT_CALIB_SIZE });
  const session = await options.backend.createSession(copy, { threads: options.threads, memoryPattern: false });
  let inferenceMs = 0;
  let batches = 0;
  try {
    // The next batch loads (image decoding runs on libuv's threads) while this one runs.
    let next = prefetch(data, order.subarray(0, Math.min(order.length, batchSize)));
    for (let start = 0; start < order.length; start += batchSize) {
      const batch = await next;
      const end = Math.min(order.length, start + batchSize);
      if (end < order.length) next = prefetch(data, order.subarray(end, Math.min(order.length, end + batchSize)));
      const feed = fixed ? pad(batch.input, batchSize) : batch.input;
      const r0 = performance.now();
      const out = fetch.length > 0 ? await session.run({ [input.name]: feed }, fetch) : {};
      inferenceMs += performance.now() - r0;
      for (const w of watches) {
        if (!w.max) {
          // The fed input itself.
          const x = feed.toFloat32();
          const [lo, hi] = extremes(x);
          w.observer.observe(w.observer.needsValues ? x : undefined, lo, hi);
          continue;
        }
        const hi = largest(out[w.max]);
        const lo = w.negMax ? -largest(out[w.negMax]) : 0;
        const v = w.values ? (out[w.values].data as Float32Array) : undefined;
        // A non-negative tensor's floor is taken as 0: the grid includes 0 anyway.
        w.observer.observe(v, Math.min(lo, hi), hi);
      }
      batches++;
      options.onProgress?.(end, order.length);
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<Value, [number, number]>();
  for (const w of watches) ranges.set(w.value, w.observer.range());
  return { ranges, samples: order.length, batches, ms: performance.now() - t0, inferenceMs };
}
