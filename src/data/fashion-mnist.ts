/**
 * The built-in Fashion-MNIST dataset, read from Debian's `dataset-fashion-mnist` package
 * (or a folder given by MOBILIZE_FASHION_MNIST). Images are float32 N×1×28×28 with pixel/255
 * and no mean/std; labels are int64 — the convention models trained elsewhere on it use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { badInput } from '../errors.js';
import { Tensor } from '../ir/tensor.js';
import { parseIdx } from './idx.js';

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

export interface LabelledImages {
  images: Tensor;
  labels: Tensor;
}

function readGz(path: string): Uint8Array {
  if (!existsSync(path)) {
    throw badInput(
      `${path} is missing: install Fashion-MNIST (apt-get install dataset-fashion-mnist) or set MOBILIZE_FASHION_MNIST to a folder holding its .gz files`,
    );
  }
  return gunzipSync(readFileSync(path));
}

/** Loads the train (60 000) or test (10 000) split, optionally only the first `limit` samples. */
export function loadFashionMnist(split: 'train' | 'test', limit?: number): LabelledImages {
  const prefix = split === 'train' ? 'train' : 't10k';
  const dir = fashionMnistDir();
  const images = parseIdx(readGz(join(dir, `${prefix}-images-idx3-ubyte.gz`)), `${prefix}-images`);
  const labels = parseIdx(readGz(join(dir, `${prefix}-labels-idx1-ubyte.gz`)), `${prefix}-labels`);
  const n = Math.min(images.dims[0], labels.dims[0], limit ?? Number.POSITIVE_INFINITY);
  const pixels = new Float32Array(n * 28 * 28);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i] / 255;
  return {
    images: Tensor.from('float32', [n, 1, 28, 28], pixels),
    labels: Tensor.from(
      'int64',
      [n],
      BigInt64Array.from(labels.data.subarray(0, n), (b) => BigInt(b)),
    ),
  };
}
