/** Classification accuracy of a model over a labelled dataset (top-1, top-5), batch by batch. */

import { type Dataset, padBatch, sampleOrder } from '../data/dataset.js';
import { badInput } from '../errors.js';
import type { Model } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Backend, Session } from '../runtime/backend.js';

export interface EvalOptions {
  batchSize?: number;
  limit?: number;
  /** The output holding logits or probabilities (default: the first). */
  output?: string;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  top1: number;
  top5: number;
  n: number;
  ms: number;
}

/** Top-1 and top-5 hits of one batch of scores [n, classes] against labels. */
export function countHits(
  scores: Float32Array,
  classes: number,
  labels: ArrayLike<number | bigint>,
  n: number,
): { top1: number; top5: number } {
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; i++) {
    const row = scores.subarray(i * classes, (i + 1) * classes);
    const label = Number(labels[i]);
    const target = row[label];
    // Rank of the true class as arg-max orders them: classes scoring higher, and classes scoring the
    // same with a lower index (ties go to the first, as in numpy and PyTorch). Counting a tie as a
    // hit would flatter coarse outputs: int8 logits tie often.
    let higher = 0;
    for (let k = 0; k < classes; k++) if (row[k] > target || (row[k] === target && k < label)) higher++;
    if (higher === 0) top1++;
    if (higher < 5) top5++;
  }
  return { top1, top5 };
}

export async function evaluate(model: Model, data: Dataset, backend: Backend, options: EvalOptions = {}): Promise<EvalResult> {
  if (!data.hasLabels) throw badInput(`${data.name} has no labels, so accuracy cannot be measured`);
  const input = model.graph.inputs.find((v) => !v.initializer);
  if (!input) throw badInput('the model has no input to feed');
  const t = input.type;
  const fixed = t?.kind === 'tensor' && typeof t.shape?.[0] === 'number' ? (t.shape[0] as number) : undefined;
  const batchSize = fixed ?? options.batchSize ?? 256;
  const order = sampleOrder(data.size, { limit: options.limit });
  const session: Session = await backend.createSession(model, { threads: options.threads });
  const outputName = options.output ?? session.outputNames[0];
  if (!session.outputNames.includes(outputName)) throw badInput(`the model has no output "${outputName}"`);
  let top1 = 0;
  let top5 = 0;
  const t0 = performance.now();
  try {
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.subarray(start, Math.min(order.length, start + batchSize));
      const batch = await data.batch(idx);
      const feed = fixed ? padBatch(batch.input, fixed) : batch.input;
      const out = (await session.run({ [input.name]: feed }, [outputName]))[outputName];
      if (out.rank !== 2) throw badInput(`output "${outputName}" has shape [${out.dims}]; accuracy needs scores of shape [N, classes]`);
      const classes = out.dims[1];
      const labels = (batch.label as Tensor).data as BigInt64Array;
      for (const l of labels) {
        if (l < 0n || Number(l) >= classes) throw badInput(`${data.name} has label ${l}, but the model scores ${classes} classes`);
      }
      const hits = countHits(out.toFloat32(), classes, labels, idx.length);
      top1 += hits.top1;
      top5 += hits.top5;
      options.onProgress?.(Math.min(order.length, start + batchSize), order.length);
    }
  } finally {
    await session.release();
  }
  const n = order.length;
  return { top1: top1 / n, top5: top5 / n, n, ms: performance.now() - t0 };
}
