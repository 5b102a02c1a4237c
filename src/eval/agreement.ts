/**
 * How closely a candidate model (quantized, pruned, exported) follows a reference over real data:
 * per output, the cosine similarity of each sample's output with the reference's (mean and
 * worst), the signal-to-quantization-noise ratio SQNR = 10·log10(Σ ref² / Σ (ref − cand)²) in dB
 * over all samples, and for score-like outputs (N×C or N×T×C) how often the arg-max agrees.
 * Statistics accumulate batch by batch; nothing is kept.
 */
import { type Dataset, padBatch, sampleOrder } from '../data/dataset.js';
import { badInput } from '../errors.js';
import type { Model, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Backend, Session } from '../runtime/backend.js';
import { countHits } from './accuracy.js';

export interface TensorAgreement {
  name: string;
  /** Mean over samples of the per-sample cosine similarity. */
  cosine: number;
  cosineMin: number;
  /** dB; Infinity when the outputs are identical. */
  sqnrDb: number;
  maxAbsDiff: number;
  /** Fraction of rows (samples, or positions of a sequence) whose arg-max agrees; for N×C and N×T×C outputs. */
  top1Agreement?: number;
}

/** Accumulates agreement statistics for named tensors, batch by batch. */
export class AgreementAccumulator {
  private readonly stats = new Map<
    string,
    { signal: number; noise: number; cosSum: number; cosMin: number; samples: number; maxAbs: number; rows: number; agree: number }
  >();

  /** Adds a batch: both tensors N × …, the first `n` samples counted. */
  add(name: string, ref: Tensor, cand: Tensor, n = ref.dims[0] ?? 1): void {
    if (ref.dims.join(',') !== cand.dims.join(',')) {
      throw badInput(`tensor "${name}" has shape [${ref.dims}] in one model and [${cand.dims}] in the other`);
    }
    let s = this.stats.get(name);
    if (!s) {
      s = { signal: 0, noise: 0, cosSum: 0, cosMin: 1, samples: 0, maxAbs: 0, rows: 0, agree: 0 };
      this.stats.set(name, s);
    }
    const a = ref.toFloat32();
    const b = cand.toFloat32();
    const batch = ref.rank > 0 ? ref.dims[0] : 1;
    const per = batch > 0 ? a.length / batch : 0;
    const count = Math.min(n, batch);
    for (let i = 0; i < count; i++) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let k = i * per; k < (i + 1) * per; k++) {
        const x = a[k];
        const y = b[k];
        dot += x * y;
        na += x * x;
        nb += y * y;
        const d = x - y;
        s.noise += d * d;
        const ad = Math.abs(d);
        if (ad > s.maxAbs) s.maxAbs = ad;
      }
      s.signal += na;
      const cos = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
      s.cosSum += cos;
      if (cos < s.cosMin) s.cosMin = cos;
      s.samples++;
    }
    if ((ref.rank === 2 || ref.rank === 3) && ref.dims[ref.rank - 1] > 1) {
      const c = ref.dims[ref.rank - 1];
      const rows = (count * per) / c;
      for (let r = 0; r < rows; r++) {
        if (argmax(a, r * c, c) === argmax(b, r * c, c)) s.agree++;
        s.rows++;
      }
    }
  }

  result(): TensorAgreement[] {
    return [...this.stats].map(([name, s]) => ({
      name,
      cosine: s.samples > 0 ? s.cosSum / s.samples : 1,
      cosineMin: s.cosMin,
      sqnrDb: s.noise === 0 ? Number.POSITIVE_INFINITY : s.signal === 0 ? Number.NEGATIVE_INFINITY : 10 * Math.log10(s.signal / s.noise),
      maxAbsDiff: s.maxAbs,
      ...(s.rows > 0 ? { top1Agreement: s.agree / s.rows } : {}),
    }));
  }
}

function argmax(x: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
  return best;
}

export interface CompareOptions {
  batchSize?: number;
  limit?: number;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface CompareResult {
  samples: number;
  outputs: TensorAgreement[];
  /** Top-1 accuracy of each model, when the data is labelled and the first output is N × classes. */
  accuracy?: { a: number; b: number };
}

function fedInput(m: Model): Value {
  const inputs = m.graph.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) throw badInput(`compare feeds one input; a model has ${inputs.length}`);
  return inputs[0];
}

function fixedBatch(v: Value): number | undefined {
  const d = v.type?.kind === 'tensor' ? v.type.shape?.[0] : undefined;
  return typeof d === 'number' ? d : undefined;
}

/**
 * Runs two models over the same data and compares the outputs they share by name (or the
 * `pairs` given: reference name → candidate name). The reference is `a`.
 */
export async function compareOnData(
  a: Model,
  b: Model,
  data: Dataset,
  backend: Backend,
  options: CompareOptions & { pairs?: ReadonlyArray<readonly [string, string]> } = {},
): Promise<CompareResult> {
  const ia = fedInput(a);
  const ib = fedInput(b);
  const fixed = fixedBatch(ia) ?? fixedBatch(ib);
  const batchSize = fixed ?? options.batchSize ?? 32;
  const sa: Session = await backend.createSession(a, { threads: options.threads, memoryPattern: false });
  let sb: Session | undefined;
  try {
    sb = await backend.createSession(b, { threads: options.threads, memoryPattern: false });
    const pairs = options.pairs ?? sa.outputNames.filter((n) => sb?.outputNames.includes(n)).map((n) => [n, n] as const);
    if (pairs.length === 0) throw badInput('the two models share no output name to compare');
    const acc = new AgreementAccumulator();
    const order = sampleOrder(data.size, { limit: options.limit });
    let hitsA = 0;
    let hitsB = 0;
    let labelled = data.hasLabels;
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.subarray(start, Math.min(order.length, start + batchSize));
      const batch = await data.batch(idx);
      const feed = fixed ? padBatch(batch.input, fixed) : batch.input;
      const oa = await sa.run(
        { [ia.name]: feed },
        pairs.map((p) => p[0]),
      );
      const ob = await sb.run(
        { [ib.name]: feed },
        pairs.map((p) => p[1]),
      );
      for (const [na, nb] of pairs) acc.add(na, oa[na], ob[nb], idx.length);
      const first = oa[pairs[0][0]];
      if (labelled && batch.label && first.rank === 2) {
        const labels = batch.label.data as BigInt64Array;
        const classes = first.dims[1];
        if ([...labels].some((l) => l < 0n || Number(l) >= classes)) labelled = false;
        else {
          hitsA += countHits(first.toFloat32(), classes, labels, idx.length).top1;
          hitsB += countHits(ob[pairs[0][1]].toFloat32(), classes, labels, idx.length).top1;
        }
      } else labelled = false;
      options.onProgress?.(Math.min(order.length, start + batchSize), order.length);
    }
    const n = order.length;
    return { samples: n, outputs: acc.result(), ...(labelled ? { accuracy: { a: hitsA / n, b: hitsB / n } } : {}) };
  } finally {
    await sa.release();
    await sb?.release();
  }
}
