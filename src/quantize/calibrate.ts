/**
 * Calibration: run the float model over sample data and let one observer per tensor pick its
 * range. The tensors are watched on a copy of the model that runs in one onnxruntime session,
 * batch by batch, and computes what observers need itself, so little crosses into JavaScript:
 * - extremes: GlobalMaxPool (rank 3–4, which onnxruntime runs in its blocked NCHWc layout
 *   without converting back) or ReduceMax; the minimum as the maximum of −x (a depthwise 1×1
 *   Conv of weight −1, which stays in that layout where a Neg would need a reorder), skipped
 *   where the tensor cannot be negative (ReLU, Sigmoid, … outputs: the grid includes 0 anyway);
 * - values, for histogram methods: every k-th element (k a prime, so the sample does not lock
 *   onto a row or channel) of tensors larger than SAMPLE_BUDGET elements per sample. Copying
 *   whole activations out of onnxruntime cost ten times the inference itself on MobileNetV2; a
 *   strided sample of 16K elements per image still gives each histogram millions of values.
 * All of it leaves in one packed 1-D output whose order makes onnxruntime run each reduction
 * right after its tensor (see calibrationModel), and the head after the last watched tensor is
 * cut off, so the copy costs little more than the float model: on MobileNetV2, batches of 8,
 * about 1.2x its steady-state run time and a first run no slower (1.5x and 2–3x with one output
 * per reduction and Neg).
 */
import { type Batch, type Dataset, padBatch, sampleOrder } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { type Graph, isOnnxDomain, type Model, type Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { removeIfDead } from '../passes/edit.js';
import { constantValue } from '../passes/match.js';
import type { Backend } from '../runtime/backend.js';
import { type CalibrationMethod, createObserver, extremes, type Observer, type ObserverOptions } from './observers.js';

export const DEFAULT_CALIB_SIZE = 256;
/**
 * Small batches: larger ones touch more fresh memory per run. Measured on MobileNetV2, 256
 * images, when every reduction was an output of its own (activations kept alive to the end):
 * quantize took 1.50x / 1.74x / 1.96x the float model's inference at batch 8 / 16 / 32.
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
  /** What the calibration copy computes; all undefined for the fed input, which is observed directly. */
  max?: Part;
  /** Maximum of −x; undefined when the tensor cannot be negative. */
  negMax?: Part;
  values?: Part;
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
    if (p && isOnnxDomain(p.domain)) {
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

/** A Graph helper: a node with one output. */
function op(g: Graph, type: string, inputs: Value[], name: string, attrs: Array<[string, { type: 'int'; value: number }]> = []): Value {
  return g.addNode(type, inputs, [name], { attrs }).output();
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

/**
 * −x, typed like x. A 4-D tensor with known channels is negated by a depthwise 1×1 Conv of
 * weight −1: onnxruntime runs it in its blocked NCHWc layout next to the Conv that made x,
 * where a Neg would need x reordered to NCHW first (on MobileNetV2, 27 full-size reorders).
 */
function negate(g: Graph, x: Value): Value {
  const t = x.type?.kind === 'tensor' ? x.type : undefined;
  const channels = t?.shape?.length === 4 ? t.shape[1] : undefined;
  let y: Value;
  if (typeof channels === 'number' && t?.dtype === 'float32') {
    const w = g.addInitializer(`${x.name}__neg_w`, Tensor.from('float32', [channels, 1, 1, 1], new Float32Array(channels).fill(-1)));
    y = op(g, 'Conv', [x, w], `${x.name}__neg`, [['group', { type: 'int', value: channels }]]);
  } else y = op(g, 'Neg', [x], `${x.name}__neg`);
  if (t) y.type = { ...t };
  return y;
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

/**
 * One fetched quantity: a reduction (max, max of −x) or a strided sample. `count(n)` is its
 * length for a batch of n samples when the shapes tell it; such parts travel packed, one after
 * the other, in one 1-D output (`PACKED`), the others as outputs of their own.
 */
interface Part {
  name: string;
  count?: (n: number) => number;
}

const PACKED = '__calibration_packed';

/** The copy of the model that outputs what the observers need. */
function calibrationModel(model: Model, watches: Watch[], wantValues: boolean): { model: Model; packed: Part[] } {
  const copy = readOnnx(writeOnnx(model).model);
  const g = copy.graph;
  const byName = new Map<string, Value>();
  for (const v of g.inputs) byName.set(v.name, v);
  for (const n of g.nodes) for (const o of n.outputs) if (o) byName.set(o.name, o);
  const input = singleInput(copy);
  const memo = new Map<Value, boolean>();
  // The model's own outputs are never fetched; the watches are the outputs.
  const original = g.outputs.splice(0, g.outputs.length);
  const parts: Array<{ value: Value; part: Part }> = [];
  const part = (value: Value, count: ((n: number) => number) | undefined): Part => {
    const p: Part = { name: value.name, ...(count ? { count } : {}) };
    parts.push({ value, part: p });
    return p;
  };
  for (const w of watches) {
    const v = byName.get(w.value.name);
    if (!v) throw new Error(`calibration: tensor ${w.value.name} is not in the model`);
    if (v === input) continue;
    const channels = channelsOf(v);
    const reduced = (x: Value, name: string): Part => {
      const r = maxOf(g, x, name);
      return part(r, r.producer?.opType === 'GlobalMaxPool' ? (channels !== undefined ? (n) => n * channels : undefined) : () => 1);
    };
    w.max = reduced(v, `${v.name}__max`);
    if (!nonNegative(v, memo)) w.negMax = reduced(negate(g, v), `${v.name}__negmax`);
    if (!wantValues) continue;
    const per = sampleSize(v);
    const stride = per === undefined ? 13 : (STRIDES.find((s) => per / s <= SAMPLE_BUDGET) ?? STRIDES[STRIDES.length - 1]);
    let sample = v;
    if (stride > 1) {
      const flat = op(g, 'Reshape', [v, int64(g, `${v.name}__flat_shape`, [-1])], `${v.name}__flat`);
      const ints = (suffix: string, n: number): Value => int64(g, `${v.name}__${suffix}`, [n]);
      sample = op(g, 'Slice', [flat, ints('start', 0), ints('end', 2 ** 62), ints('axis', 0), ints('step', stride)], `${v.name}__sample`);
    }
    w.values = part(sample, per !== undefined ? (n) => Math.ceil((n * per) / stride) : undefined);
  }
  // Packed parts: each flattened, then one Concat. onnxruntime orders nodes by a depth-first
  // walk back from the outputs that takes a node's inputs highest file position first; the
  // flattening nodes go in reverse, so the walk reaches the first watched tensor first, runs
  // each reduction as soon as its tensor exists and frees the tensor. With one output per
  // reduction, most reductions ran after the whole network and kept every activation alive
  // (MobileNetV2's calibration ran 1.6x slower than the float model; its first batch 2-3x).
  const packed = parts.filter((p) => p.part.count);
  const flats: Value[] = [];
  for (let i = packed.length - 1; i >= 0; i--) {
    const { value } = packed[i];
    flats[i] = g.addNode('Reshape', [value, int64(g, `${value.name}__pack_shape`, [-1])], [`${value.name}__packed`]).output();
  }
  if (flats.length > 0) {
    const all = g.addNode('Concat', flats, [PACKED], { attrs: [['axis', { type: 'int', value: 0 }]] }).output();
    all.type = { kind: 'tensor', dtype: 'float32', shape: ['n'] };
    g.addOutput(all);
  }
  for (const p of parts) {
    if (p.part.count || g.outputs.includes(p.value)) continue;
    g.addOutput(p.value);
  }
  // A model must have an output, even when only its input is watched.
  if (g.outputs.length === 0) g.addOutput(original[0]);
  // Outputs need types in the file; ORT infers the rest.
  for (const o of g.outputs) if (!o.type) o.type = { kind: 'tensor', dtype: 'float32' };
  // What feeds no output (the head after the last watched tensor) is not run.
  for (let i = g.nodes.length - 1; i >= 0; i--) removeIfDead(g.nodes[i]);
  g.removeUnusedInitializers();
  return { model: copy, packed: packed.map((p) => p.part) };
}

/** Channels (dim 1) of a rank 3–4 tensor, when known. */
function channelsOf(v: Value): number | undefined {
  const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
  const c = shape && (shape.length === 3 || shape.length === 4) ? shape[1] : undefined;
  return typeof c === 'number' ? c : undefined;
}

/** Each part's values from one run: packed parts sliced out of the packed output by their counts. */
function unpack(out: Record<string, Tensor>, packed: readonly Part[], n: number): Map<Part, Float32Array> {
  const views = new Map<Part, Float32Array>();
  const all = out[PACKED]?.data as Float32Array | undefined;
  let at = 0;
  for (const p of packed) {
    const len = (p.count as (n: number) => number)(n);
    if (!all || at + len > all.length)
      throw new Error(`calibration: packed output shorter than its parts (${all?.length ?? 0} < ${at + len})`);
    views.set(p, all.subarray(at, at + len));
    at += len;
  }
  if (all && at !== all.length) throw new Error(`calibration: packed output of ${all.length} values, parts of ${at}`);
  return views;
}

/** Batch size for a model whose input fixes it, else the requested one. */
export function batchSizeFor(input: Value, requested: number): { size: number; fixed: boolean } {
  const t = input.type;
  const d = t?.kind === 'tensor' ? t.shape?.[0] : undefined;
  return typeof d === 'number' ? { size: d, fixed: true } : { size: requested, fixed: false };
}

/** Starts loading a batch; a failure surfaces when it is awaited, never as an unhandled rejection. */
function prefetch(data: Dataset, indices: Int32Array): Promise<Batch> {
  const p = data.batch(indices);
  p.catch(() => undefined);
  return p;
}

function largest(d: Float32Array): number {
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
  const { model: copy, packed } = calibrationModel(model, watches, wantValues);
  const fetch = copy.graph.outputs.map((o) => o.name);
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
      const feed = fixed ? padBatch(batch.input, batchSize) : batch.input;
      const r0 = performance.now();
      const out = await session.run({ [input.name]: feed }, fetch);
      inferenceMs += performance.now() - r0;
      const views = unpack(out, packed, feed.dims[0]);
      const view = (p: Part): Float32Array => views.get(p) ?? (out[p.name].data as Float32Array);
      for (const w of watches) {
        if (!w.max) {
          // The fed input itself.
          const x = feed.toFloat32();
          const [lo, hi] = extremes(x);
          w.observer.observe(w.observer.needsValues ? x : undefined, lo, hi);
          continue;
        }
        const hi = largest(view(w.max));
        const lo = w.negMax ? -largest(view(w.negMax)) : 0;
        const v = w.values ? view(w.values) : undefined;
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
