/**
 * Datasets: labelled (or unlabelled) inputs that commands read in batches — calibration,
 * evaluation, training. A dataset holds its samples compactly (Fashion-MNIST as bytes, an image
 * folder as file names) and makes float tensors one batch at a time, so memory stays bounded.
 */
import { badInput } from '../errors.js';
import type { DType } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import { Random } from '../util/random.js';

export interface Batch {
  /** N × sample dims. */
  input: Tensor;
  /** int64 [N] class labels, when the dataset has them. */
  label?: Tensor;
}

export interface Dataset {
  /** What it is, for messages and reports ("fashion-mnist:test", "calib.npy"). */
  readonly name: string;
  readonly size: number;
  /** Dims of one sample, without the batch dim. */
  readonly sampleDims: readonly number[];
  readonly dtype: DType;
  readonly hasLabels: boolean;
  /** Number of classes, when labelled. */
  readonly classes?: number;
  /** The samples at these indices, as one batch. */
  batch(indices: ArrayLike<number>): Promise<Batch>;
}

export interface BatchOptions {
  batchSize: number;
  /** Use only the first `limit` samples (after shuffling). */
  limit?: number;
  shuffle?: boolean;
  seed?: number;
}

/** Sample indices in iteration order. */
export function sampleOrder(size: number, options: Omit<BatchOptions, 'batchSize'> = {}): Int32Array {
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  if (options.shuffle) {
    const rng = new Random(options.seed ?? 0);
    for (let i = size - 1; i > 0; i--) {
      const j = rng.int(0, i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
  return options.limit !== undefined ? order.subarray(0, Math.min(options.limit, size)) : order;
}

/** Iterates a dataset in batches. */
export async function* batches(ds: Dataset, options: BatchOptions): AsyncGenerator<Batch> {
  if (ds.size === 0) throw badInput(`${ds.name}: the dataset is empty`);
  const order = sampleOrder(ds.size, options);
  for (let start = 0; start < order.length; start += options.batchSize) {
    yield ds.batch(order.subarray(start, Math.min(order.length, start + options.batchSize)));
  }
}

/** Number of samples an iteration with these options visits. */
export function sampleCount(ds: Dataset, options: Omit<BatchOptions, 'batchSize'> = {}): number {
  return options.limit !== undefined ? Math.min(options.limit, ds.size) : ds.size;
}

/** Pads a short batch to a model's fixed batch size by repeating its last sample (callers do not count those rows). */
export function padBatch(t: Tensor, size: number): Tensor {
  const n = t.dims[0];
  if (n === size) return t;
  const per = t.size / n;
  const src = t.toFloat32();
  const out = new Float32Array(size * per);
  out.set(src);
  for (let i = n; i < size; i++) out.set(src.subarray((n - 1) * per, n * per), i * per);
  return Tensor.from('float32', [size, ...t.dims.slice(1)], out);
}
