/**
 * The built-in Fashion-MNIST dataset, read from Debian's `dataset-fashion-mnist` package
 * (or a folder given by MOBILIZE_FASHION_MNIST). Images are float32 N×1×28×28 with pixel/255
 * and no mean/std unless asked; labels are int64 — the convention models trained elsewhere on
 * it use. The pixels stay bytes in memory (47 MB for the training split) and become floats one
 * batch at a time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { badInput } from '../errors.js';
import { Tensor } from '../ir/tensor.js';
import type { Batch, Dataset } from './dataset.js';
import { parseIdx } from './idx.js';
import { type Preprocess, writePixels } from './preprocess.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

const DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';

export function fashionMnistDir(): string {
  return process.env.MOBILIZE_FASHION_MNIST ?? DEBIAN_DIR;
}

export function fashionMnistAvailable(): boolean {
  return existsSync(join(fashionMnistDir(), 't10k-images-idx3-ubyte.gz'));
}

function readGz(path: string): Uint8Array {
  if (!existsSync(path)) {
    throw badInput(
      `${path} is missing: install Fashion-MNIST (apt-get install dataset-fashion-mnist) or set MOBILIZE_FASHION_MNIST to a folder holding its .gz files`,
    );
  }
  return gunzipSync(readFileSync(path));
}

export class FashionMnist implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleDims = [1, 28, 28] as const;
  readonly dtype = 'float32' as const;
  readonly hasLabels = true;
  readonly classes = 10;
  /** Raw pixels, one byte each, N×28×28. */
  readonly pixels: Uint8Array;
  /** Class of each sample. */
  readonly labels: Uint8Array;
  private readonly preprocess: Preprocess;

  constructor(split: 'train' | 'test', preprocess: Preprocess = {}) {
    const prefix = split === 'train' ? 'train' : 't10k';
    const dir = fashionMnistDir();
    const images = parseIdx(readGz(join(dir, `${prefix}-images-idx3-ubyte.gz`)), `${prefix}-images`);
    const labels = parseIdx(readGz(join(dir, `${prefix}-labels-idx1-ubyte.gz`)), `${prefix}-labels`);
    this.size = Math.min(images.dims[0], labels.dims[0]);
    this.pixels = images.data;
    this.labels = labels.data;
    this.name = `fashion-mnist:${split}`;
    this.preprocess = preprocess;
  }

  async batch(indices: ArrayLike<number>): Promise<Batch> {
    return this.batchSync(indices);
  }

  /** The same as `batch`, without a promise (the data is in memory). */
  batchSync(indices: ArrayLike<number>): Batch {
    const n = indices.length;
    const out = new Float32Array(n * 784);
    const label = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const s = indices[i];
      writePixels(this.pixels.subarray(s * 784, s * 784 + 784), 28, 28, 1, { ...this.preprocess, layout: 'nchw' }, out, i * 784);
      label[i] = BigInt(this.labels[s]);
    }
    return { input: Tensor.from('float32', [n, 1, 28, 28], out), label: Tensor.from('int64', [n], label) };
  }
}

export interface LabelledImages {
  images: Tensor;
  labels: Tensor;
}

/** Loads the train (60 000) or test (10 000) split, optionally only the first `limit` samples. */
export function loadFashionMnist(split: 'train' | 'test', limit?: number): LabelledImages {
  const ds = new FashionMnist(split);
  const n = Math.min(ds.size, limit ?? ds.size);
  const { input, label } = ds.batchSync(Int32Array.from({ length: n }, (_, i) => i));
  return { images: input, labels: label as Tensor };
}
