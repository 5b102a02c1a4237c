/**
 * `verify`: does a .tflite model compute what its ONNX reference computes? Both run on the same
 * inputs — seeded random ones, or a dataset's samples — the .tflite on the real TFLite
 * interpreter (WASM), the reference on onnxruntime. Inputs and outputs are matched by name (else
 * by order), NHWC↔NCHW differences undone, int8/uint8 inputs quantized and outputs dequantized
 * with the tensors' own parameters. Reported per output: max absolute error, max error relative
 * to the output's scale (its largest magnitude), cosine, SQNR and top-1 agreement; with labels,
 * the accuracy of both. There is no absolute floor under which any difference passes: models
 * with random weights have outputs of 1e-9 and are still compared to their own scale.
 */
import { type Dataset, padBatch, sampleOrder } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { countHits } from '../eval/accuracy.js';
import { AgreementAccumulator, type TensorAgreement } from '../eval/agreement.js';
import { TensorType, type TfliteModel } from '../formats/tflite/model.js';
import { readTflite } from '../formats/tflite/read.js';
import { type DType, isInteger } from '../ir/dtype.js';
import type { Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { invertPerm, isIdentityPerm, permuteShape } from '../passes/perm.js';
import { type QuantDType, qrange } from '../quantize/params.js';
import type { Backend, Session } from '../runtime/backend.js';
import { requiredInputs } from '../runtime/feeds.js';
import { loadTflite, type TfliteRunner, type TfliteTensorInfo } from '../runtime/tflite.js';
import { fromTflite, type IoLayout, type IoPair, type IoQuantization, layoutPerm, pairByName, toTflite } from '../runtime/tflite-io.js';
import { hasTfliteIdentifier } from '../runtime/tflite-runner.js';
import { Random } from '../util/random.js';

/** Largest output error, relative to the output's scale, that passes by default (float32 exports). */
export const TFLITE_TOLERANCE = 1e-4;

export interface TfliteVerifyOptions {
  backend: Backend;
  /** Run on this dataset's samples (single-input models); seeded random inputs otherwise. */
  data?: Dataset;
  /** Use at most this many samples of `data`. */
  limit?: number;
  /** Random runs when no data is given (default 3). */
  samples?: number;
  seed?: number;
  /** Largest passing error relative to each output's scale (default 1e-4). */
  tolerance?: number;
  /** How rank-3+ tensors are laid out in the .tflite relative to the reference (default: from the shapes). */
  layout?: IoLayout;
  /** The .tflite file's name, for messages. */
  name?: string;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface TfliteOutputAgreement extends TensorAgreement {
  /** The .tflite tensor compared with the reference output `name`. */
  tflite: string;
  /** Largest magnitude of the reference output. */
  scale: number;
  /** maxAbsDiff / scale. */
  relDiff: number;
  passed: boolean;
}

export interface TfliteVerifyReport {
  tflite: string;
  /** The interpreter build that ran ('simd' = WASM SIMD with XNNPACK). */
  build: 'simd' | 'plain';
  source: string;
  samples: number;
  inputs: Array<{ tflite: string; reference: string; transposed: boolean; quantized?: IoQuantization & { dtype: string } }>;
  outputs: TfliteOutputAgreement[];
  /** Worst relDiff over the outputs. */
  worst: number;
  tolerance: number;
  passed: boolean;
  /** Top-1 accuracy of both models, with a labelled dataset and an N × classes first output. */
  accuracy?: { tflite: number; reference: number };
}

/** Per-tensor int8/uint8 parameters of subgraph 0's inputs and outputs, by tensor name. */
function ioQuantization(model: TfliteModel): Map<string, IoQuantization> {
  const out = new Map<string, IoQuantization>();
  const g = model.subgraphs[0];
  if (!g) return out;
  for (const index of [...g.inputs, ...g.outputs]) {
    const t = g.tensors[index];
    if (!t || (t.type !== TensorType.INT8 && t.type !== TensorType.UINT8)) continue;
    const q = t.quantization;
    if (q && q.scale.length === 1 && q.scale[0] > 0) out.set(t.name, { scale: q.scale[0], zeroPoint: q.zeroPoint[0] ?? 0 });
  }
  return out;
}

function needsQuantization(info: TfliteTensorInfo, quant: Map<string, IoQuantization>, file: string): IoQuantization | undefined {
  if (info.dtype !== 'int8' && info.dtype !== 'uint8') return undefined;
  const q = quant.get(info.name);
  if (!q) throw badInput(`${file}: ${info.dtype} tensor "${info.name}" has no per-tensor quantization to convert real values with`);
  return q;
}

function shapeOf(v: Value): (number | string | null)[] | undefined {
  return v.type?.kind === 'tensor' ? v.type.shape : undefined;
}

function randomInput(
  info: TfliteTensorInfo,
  refDims: number[],
  refType: DType | undefined,
  q: IoQuantization | undefined,
  rng: Random,
): Tensor {
  const n = refDims.reduce((a, b) => a * b, 1);
  if (q) {
    // Values the quantized input represents exactly, so both models see the same numbers.
    const [lo, hi] = qrange(info.dtype as QuantDType);
    return Tensor.from(
      'float32',
      refDims,
      Float32Array.from({ length: n }, () => q.scale * (rng.int(lo, hi + 1) - q.zeroPoint)),
    );
  }
  if (info.dtype === 'float32')
    return Tensor.from(
      'float32',
      refDims,
      Float32Array.from({ length: n }, () => rng.next()),
    );
  if (info.dtype === 'bool')
    return Tensor.from(
      'bool',
      refDims,
      Array.from({ length: n }, () => rng.int(0, 2)),
    );
  // Integer inputs (ids, indices): the reference's own integer type (int64 in ONNX, int32 in TFLite).
  const dtype = refType && isInteger(refType) ? refType : info.dtype;
  return Tensor.from(
    dtype,
    refDims,
    Array.from({ length: n }, () => rng.int(0, 10)),
  );
}

/** Runs a .tflite model and its ONNX reference on the same inputs and compares their outputs. */
export async function verifyTflite(tfliteBytes: Uint8Array, reference: Model, options: TfliteVerifyOptions): Promise<TfliteVerifyReport> {
  const file = options.name ?? 'model.tflite';
  const tolerance = options.tolerance ?? TFLITE_TOLERANCE;
  const layout = options.layout ?? 'auto';
  // Our reader says precisely what is wrong with a damaged file (the interpreter only says it
  // "can't initialize model"); the interpreter has the last word on what it accepts.
  let parsed: TfliteModel | undefined;
  let readError: unknown;
  try {
    parsed = readTflite(tfliteBytes, { source: file });
  } catch (e) {
    readError = e;
  }
  let runner: TfliteRunner;
  try {
    runner = await loadTflite(tfliteBytes, { name: file, threads: options.threads });
  } catch (e) {
    throw readError !== undefined && hasTfliteIdentifier(tfliteBytes) ? readError : e;
  }
  let session: Session | undefined;
  try {
    const quant = parsed ? ioQuantization(parsed) : new Map<string, IoQuantization>();
    const refInputs = requiredInputs(reference);
    const inputPairs: IoPair[] = pairByName(
      runner.inputs,
      refInputs.map((v) => v.name),
      'input',
      file,
    ).map(([info, name]) => {
      const v = refInputs.find((r) => r.name === name) as Value;
      const perm = layoutPerm(info.shape, shapeOf(v), layout);
      if (!perm) {
        throw badInput(
          `input "${info.name}" of ${file} has shape [${info.shape}], which does not fit the reference input "${name}" [${shapeOf(v)}] ${layout === 'same' ? 'as it is' : layout === 'nhwc' ? 'channels-last' : 'as it is or transposed'}`,
        );
      }
      return { tflite: info, reference: name, perm, quantization: needsQuantization(info, quant, file) };
    });
    const outputPairs: IoPair[] = pairByName(
      runner.outputs,
      reference.graph.outputs.map((v) => v.name),
      'output',
      file,
    ).map(([info, name]) => ({ tflite: info, reference: name, quantization: needsQuantization(info, quant, file) }));
    const refTypes = new Map(refInputs.map((v) => [v.name, v.type?.kind === 'tensor' ? v.type.dtype : undefined]));
    session = await options.backend.createSession(reference, { threads: options.threads });
    const refSession = session;
    const refDimsOf = (p: IoPair): number[] => permuteShape(p.tflite.shape, invertPerm(p.perm as number[]));

    const acc = new AgreementAccumulator();
    const scales = new Map<string, number>();
    let hitsTflite = 0;
    let hitsRef = 0;
    let labelled = options.data?.hasLabels ?? false;

    const runBoth = async (refFeeds: Record<string, Tensor>, count: number, labels?: Tensor): Promise<void> => {
      const tflFeeds: Record<string, Tensor> = {};
      for (const p of inputPairs) tflFeeds[p.tflite.name] = toTflite(refFeeds[p.reference], p);
      const got = await runner.run(tflFeeds);
      const want = await refSession.run(refFeeds);
      const cands = new Map<IoPair, Tensor>();
      for (const p of outputPairs) {
        const ref = want[p.reference];
        if (!p.perm) {
          const perm = layoutPerm(p.tflite.shape, [...ref.dims], layout);
          if (!perm) {
            throw badInput(
              `output "${p.tflite.name}" of ${file} has shape [${p.tflite.shape}]; the reference's "${p.reference}" is [${ref.dims}], not even transposed`,
            );
          }
          p.perm = perm;
        }
        const cand = fromTflite(got[p.tflite.name], p);
        cands.set(p, cand);
        const real = ref.dtype === 'float32' ? ref : Tensor.from('float32', ref.dims, ref.toFloat32());
        acc.add(p.reference, real, cand, count);
        const data = real.toFloat32();
        const per = real.dims.length > 0 && real.dims[0] > 0 ? data.length / real.dims[0] : data.length;
        let scale = scales.get(p.reference) ?? 0;
        for (let i = 0; i < Math.min(data.length, count * per); i++)
          if (Number.isFinite(data[i])) scale = Math.max(scale, Math.abs(data[i]));
        scales.set(p.reference, scale);
      }
      const first = outputPairs[0];
      const ref = want[first.reference];
      if (labelled && labels && ref.rank === 2) {
        const classes = ref.dims[1];
        const l = labels.data as BigInt64Array;
        if ([...l].some((x) => x < 0n || Number(x) >= classes)) labelled = false;
        else {
          hitsRef += countHits(ref.toFloat32(), classes, l, count).top1;
          hitsTflite += countHits((cands.get(first) as Tensor).toFloat32(), classes, l, count).top1;
        }
      } else labelled = false;
    };

    let samples = 0;
    let source: string;
    if (options.data) {
      const data = options.data;
      if (inputPairs.length !== 1)
        throw badInput(`verifying on ${data.name} needs a model with one input; ${file} has ${inputPairs.length}`);
      const pair = inputPairs[0];
      const dims = refDimsOf(pair);
      const batch = dims[0];
      if (dims.slice(1).join(',') !== data.sampleDims.join(',')) {
        throw badInput(
          `${data.name} has samples of shape [${data.sampleDims}] but the reference input "${pair.reference}" takes [${dims.slice(1)}] per sample`,
        );
      }
      const order = sampleOrder(data.size, { limit: options.limit });
      if (order.length === 0) throw badInput(`${data.name}: the dataset is empty`);
      for (let start = 0; start < order.length; start += batch) {
        const idx = order.subarray(start, Math.min(order.length, start + batch));
        const b = await data.batch(idx);
        await runBoth({ [pair.reference]: padBatch(b.input, batch) }, idx.length, b.label);
        options.onProgress?.(start + idx.length, order.length);
      }
      samples = order.length;
      source = data.name;
    } else {
      labelled = false;
      const runs = options.samples ?? 3;
      for (let s = 0; s < runs; s++) {
        const rng = new Random((options.seed ?? 0) + s);
        const feeds: Record<string, Tensor> = {};
        for (const p of inputPairs)
          feeds[p.reference] = randomInput(p.tflite, refDimsOf(p), refTypes.get(p.reference), p.quantization, rng);
        await runBoth(feeds, Number.POSITIVE_INFINITY);
        options.onProgress?.(s + 1, runs);
      }
      samples = runs;
      source = 'random inputs';
    }

    const outputs: TfliteOutputAgreement[] = acc.result().map((a) => {
      const p = outputPairs.find((o) => o.reference === a.name) as IoPair;
      const scale = scales.get(a.name) ?? 0;
      const relDiff = scale > 0 ? a.maxAbsDiff / scale : a.maxAbsDiff;
      return { ...a, tflite: p.tflite.name, scale, relDiff, passed: a.maxAbsDiff <= tolerance * (scale > 0 ? scale : 1) };
    });
    const worst = Math.max(0, ...outputs.map((o) => o.relDiff));
    return {
      tflite: file,
      build: runner.build,
      source,
      samples,
      inputs: inputPairs.map((p) => ({
        tflite: p.tflite.name,
        reference: p.reference,
        transposed: !isIdentityPerm(p.perm ?? []),
        ...(p.quantization ? { quantized: { ...p.quantization, dtype: p.tflite.dtype } } : {}),
      })),
      outputs,
      worst,
      tolerance,
      passed: outputs.every((o) => o.passed),
      ...(labelled && samples > 0 ? { accuracy: { tflite: hitsTflite / samples, reference: hitsRef / samples } } : {}),
    };
  } finally {
    runner.dispose();
    await session?.release();
  }
}
