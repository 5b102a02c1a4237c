/**
 * Image folders (Node only): `folder/*.jpg` (unlabelled) or `folder/<class>/*.jpg` (labelled,
 * classes in sorted order, as torchvision's ImageFolder does). Images are decoded and resized
 * with sharp, one batch at a time.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { badInput, firstLine } from '../errors.js';
import { Tensor } from '../ir/tensor.js';
import type { Batch, Dataset } from './dataset.js';
import { type Preprocess, writePixels } from './preprocess.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.bmp']);

export interface ImageFolderOptions extends Preprocess {
  height: number;
  width: number;
  /** 1 (grey) or 3 (colour). */
  channelCount: 1 | 3;
}

function listImages(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(dir, f));
}

export class ImageFolder implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleDims: readonly number[];
  readonly dtype = 'float32' as const;
  readonly hasLabels: boolean;
  readonly classes?: number;
  readonly classNames: string[];
  private readonly files: string[];
  private readonly labels: number[];
  private readonly options: ImageFolderOptions;

  constructor(dir: string, options: ImageFolderOptions) {
    this.name = dir;
    this.options = options;
    const subdirs = readdirSync(dir)
      .filter((d) => statSync(join(dir, d)).isDirectory())
      .sort();
    const flat = listImages(dir);
    this.files = [];
    this.labels = [];
    this.classNames = [];
    if (flat.length === 0 && subdirs.length > 0) {
      for (const d of subdirs) {
        const files = listImages(join(dir, d));
        if (files.length === 0) continue;
        this.classNames.push(d);
        for (const f of files) {
          this.files.push(f);
          this.labels.push(this.classNames.length - 1);
        }
      }
    } else {
      this.files.push(...flat);
    }
    if (this.files.length === 0) throw badInput(`${dir}: no images found (looked for ${[...IMAGE_EXTENSIONS].join(' ')})`);
    this.size = this.files.length;
    this.hasLabels = this.classNames.length > 0;
    if (this.hasLabels) this.classes = this.classNames.length;
    const { height: h, width: w, channelCount: c } = options;
    this.sampleDims = options.layout === 'nhwc' ? [h, w, c] : [c, h, w];
  }

  async batch(indices: ArrayLike<number>): Promise<Batch> {
    const { height: h, width: w, channelCount: c } = this.options;
    const n = indices.length;
    const out = new Float32Array(n * c * h * w);
    await Promise.all(
      Array.from(indices, async (s, i) => {
        const file = this.files[s];
        let data: Buffer;
        try {
          let img = sharp(file).resize(w, h, { fit: 'fill' }).removeAlpha();
          img = c === 1 ? img.greyscale() : img.toColourspace('srgb');
          data = await img.raw().toBuffer();
        } catch (e) {
          throw badInput(`${file}: cannot read the image (${firstLine(e)})`);
        }
        if (data.length !== h * w * c) throw badInput(`${file}: decoded to ${data.length} bytes, expected ${h}×${w}×${c}`);
        writePixels(data, h, w, c, this.options, out, i * c * h * w);
      }),
    );
    const input = Tensor.from('float32', [n, ...this.sampleDims], out);
    if (!this.hasLabels) return { input };
    return {
      input,
      label: Tensor.from(
        'int64',
        [n],
        Array.from(indices, (s) => this.labels[s]),
      ),
    };
  }
}
