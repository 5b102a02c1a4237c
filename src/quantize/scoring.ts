/**
 * How much a candidate model loses against its float original, measured again and again on the
 * same samples: the quality tools (sensitivity, fallback, mixed precision) score dozens of
 * variants. The samples and the float model's outputs are read once and kept (up to a memory
 * budget; beyond it they are read again per score). Two figures per candidate:
 * - top-1 accuracy of the first output (N × classes) when the data is labelled;
 * - SQNR of the first output against the float model's, over all samples, and its linear form
 *   NSR = Σ(ref − cand)² / Σ ref², which adds up (roughly) over independent noise sources.
 */
import { type Batch, type Dataset, padBatch, sampleOrder } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { countHits } from '../eval/accuracy.js';
import type { Model, Value } from '../ir/graph.js';
import type { Backend } from '../runtime/backend.js';

export interface Score {
  /** Top-1 accuracy in [0, 1], for labelled data and an N × classes output. */
  accuracy?: number;
  /** SQNR of the first output against the float model's, dB (Infinity when identical). */
  sqnrDb: number;
  /** Noise-to-signal ratio, 10^(−SQNR/10). */
  nsr: number;
}

export interface ScorerOptions {
  /** Samples to score on (default: all of the data). */
  limit?: number;
  batchSize?: number;
  threads?: number;
  /** Bytes of inputs and reference outputs kept in memory (default 512 MB). */
  cacheBytes?: number;
}

const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024;

function fedInput(m: Model): Value {
  const inputs = m.graph.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) throw badInput(`scoring feeds one input; the model has ${inputs.length}`);
  return inputs[0];
}

function fixedBatch(v: Value): number | undefined {
  const d = v.type?.kind === 'tensor' ? v.type.shape?.[0] : undefined;
  return typeof d === 'number' ? d : undefined;
}

interface Entry {
  indices: Int32Array;
  batch?: Batch;
  reference?: Float32Array;
}

export class Scorer {
  readonly data: Dataset;
  readonly samples: number;
  /** Whether accuracy is measured (labelled data, N × classes output). */
  readonly labelled: boolean;
  /** The float model's score (accuracy; SQNR Infinity). */
  readonly float: Score;
  /** Candidates scored so far. */
  count = 0;
  private readonly entries: Entry[];
  private readonly reference: Model;
  private readonly backend: Backend;
  private readonly options: ScorerOptions;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly fixed: number | undefined;

  private constructor(
    reference: Model,
    data: Dataset,
    backend: Backend,
    options: ScorerOptions,
    state: { entries: Entry[]; labelled: boolean; accuracy?: number; inputName: string; outputName: string; fixed?: number },
  ) {
    this.reference = reference;
    this.data = data;
    this.backend = backend;
    this.options = options;
    this.entries = state.entries;
    this.samples = state.entries.reduce((n, e) => n + e.indices.length, 0);
    this.labelled = state.labelled;
    this.inputName = state.inputName;
    this.outputName = state.outputName;
    this.fixed = state.fixed;
    this.float = { sqnrDb: Number.POSITIVE_INFINITY, nsr: 0, ...(state.accuracy !== undefined ? { accuracy: state.accuracy } : {}) };
  }

  /** Runs the float model over the data once; later scores compare against what it gave. */
  static async create(reference: Model, data: Dataset, backend: Backend, options: ScorerOptions = {}): Promise<Scorer> {
    if (data.size === 0) throw badInput(`${data.name}: the evaluation data is empty`);
    const input = fedInput(reference);
    const fixed = fixedBatch(input);
    const batchSize = fixed ?? options.batchSize ?? 32;
    const order = sampleOrder(data.size, { limit: options.limit });
    const session = await backend.createSession(reference, { threads: options.threads });
    const outputName = session.outputNames[0];
    const entries: Entry[] = [];
    let used = 0;
    const budget = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    let labelled = data.hasLabels;
    let hits = 0;
    try {
      for (let start = 0; start < order.length; start += batchSize) {
        const indices = order.slice(start, Math.min(order.length, start + batchSize));
        const batch = await data.batch(indices);
        const feed = fixed ? padBatch(batch.input, fixed) : batch.input;
        const out = (await session.run({ [input.name]: feed }, [outputName]))[outputName];
        const ref = out.toFloat32().slice(0, (out.size / out.dims[0]) * indices.length);
        const entry: Entry = { indices };
        const bytes = feed.size * 4 + ref.byteLength;
        if (used + bytes <= budget) {
          entry.batch = batch;
          entry.reference = ref;
          used += bytes;
        }
        if (labelled && batch.label && out.rank === 2) {
          const labels = batch.label.data as BigInt64Array;
          const classes = out.dims[1];
          if ([...labels].some((l) => l < 0n || Number(l) >= classes)) labelled = false;
          else hits += countHits(out.toFloat32(), classes, labels, indices.length).top1;
        } else labelled = false;
        entries.push(entry);
      }
    } finally {
      await session.release();
    }
    return new Scorer(reference, data, backend, options, {
      entries,
      labelled,
      ...(labelled ? { accuracy: hits / order.length } : {}),
      inputName: input.name,
      outputName,
      ...(fixed !== undefined ? { fixed } : {}),
    });
  }

  /** Scores a candidate with the same input and first output as the float model. */
  async score(candidate: Model): Promise<Score> {
    this.count++;
    const session = await this.backend.createSession(candidate, { threads: this.options.threads });
    let refSession: Awaited<ReturnType<Backend['createSession']>> | undefined;
    let signal = 0;
    let noise = 0;
    let hits = 0;
    try {
      if (!session.outputNames.includes(this.outputName)) {
        throw badInput(`the candidate model has no output "${this.outputName}"`);
      }
      for (const e of this.entries) {
        const batch = e.batch ?? (await this.data.batch(e.indices));
        const feed = this.fixed ? padBatch(batch.input, this.fixed) : batch.input;
        const out = (await session.run({ [this.inputName]: feed }, [this.outputName]))[this.outputName];
        let ref = e.reference;
        if (!ref) {
          refSession ??= await this.backend.createSession(this.reference, { threads: this.options.threads });
          const r = (await refSession.run({ [this.inputName]: feed }, [this.outputName]))[this.outputName];
          ref = r.toFloat32();
        }
        const cand = out.toFloat32();
        const n = (out.size / out.dims[0]) * e.indices.length;
        for (let i = 0; i < n; i++) {
          const d = ref[i] - cand[i];
          signal += ref[i] * ref[i];
          noise += d * d;
        }
        if (this.labelled && batch.label) {
          hits += countHits(cand, out.dims[1], batch.label.data as BigInt64Array, e.indices.length).top1;
        }
      }
    } finally {
      await session.release();
      await refSession?.release();
    }
    const nsr = signal > 0 ? noise / signal : noise > 0 ? Number.POSITIVE_INFINITY : 0;
    return {
      sqnrDb: nsr === 0 ? Number.POSITIVE_INFINITY : -10 * Math.log10(nsr),
      nsr,
      ...(this.labelled ? { accuracy: hits / this.samples } : {}),
    };
  }
}

/** Accuracy lost against the float model, in percentage points (0 without labels). */
export function dropPoints(float: Score, s: Score): number {
  return float.accuracy !== undefined && s.accuracy !== undefined ? (float.accuracy - s.accuracy) * 100 : 0;
}
