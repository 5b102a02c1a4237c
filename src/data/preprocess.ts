/** Turning 8-bit pixels into a model's input: scale, mean/std, channel order and layout. */
import { badInput } from '../errors.js';

export interface Preprocess {
  /** Per-channel mean subtracted after scaling (default none). */
  mean?: number[];
  /** Per-channel std divided by after the mean (default none). */
  std?: number[];
  /** Pixel scale before mean/std (default 1/255: pixels in [0, 1]). */
  scale?: number;
  /** Channel order of the model's input (default rgb). */
  channels?: 'rgb' | 'bgr';
  /** Layout of the model's input (default nchw). */
  layout?: 'nchw' | 'nhwc';
}

function perChannel(values: number[] | undefined, c: number, what: string, fill: number): number[] {
  if (!values) return new Array(c).fill(fill);
  if (values.length === 1) return new Array(c).fill(values[0]);
  if (values.length !== c) throw badInput(`--${what} has ${values.length} values but the input has ${c} channels`);
  return values;
}

/**
 * Writes one image (interleaved HWC bytes, `c` channels in RGB order) into `out` at `offset`,
 * preprocessed and in the model's layout.
 */
export function writePixels(pixels: Uint8Array, h: number, w: number, c: number, p: Preprocess, out: Float32Array, offset: number): void {
  const scale = p.scale ?? 1 / 255;
  const mean = perChannel(p.mean, c, 'mean', 0);
  const std = perChannel(p.std, c, 'std', 1);
  const bgr = p.channels === 'bgr' && c === 3;
  const nhwc = p.layout === 'nhwc';
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        const src = (y * w + x) * c + (bgr ? c - 1 - k : k);
        const v = (pixels[src] * scale - mean[k]) / std[k];
        const dst = nhwc ? (y * w + x) * c + k : k * h * w + y * w + x;
        out[offset + dst] = v;
      }
    }
  }
}

/** Parses a comma-separated list of numbers (`--mean 0.485,0.456,0.406`). */
export function parseNumberList(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v)))
    throw badInput(`${flag} ${text}: expected numbers separated by commas`);
  return values;
}
