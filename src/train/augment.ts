/**
 * Data augmentation for image batches (N×C×H×W floats), seeded: a random crop with padding
 * (the image shifted by up to `pad` pixels each way, the uncovered border filled with 0 — the same
 * as padding by `pad` and cropping back to H×W) and a horizontal flip with probability ½.
 * Browser-safe.
 */
import { badInput } from '../errors.js';
import type { Random } from '../util/random.js';

export interface AugmentOptions {
  /** Largest shift of the random crop, in pixels (default 2; 0 turns it off). */
  pad?: number;
  /** Random horizontal flip (default true). */
  flip?: boolean;
}

export function resolveAugment(a: AugmentOptions | boolean | undefined): Required<AugmentOptions> | undefined {
  if (!a) return undefined;
  const o = a === true ? {} : a;
  const pad = o.pad ?? 2;
  if (!Number.isInteger(pad) || pad < 0) throw badInput(`augmentation padding ${pad}: expected a whole number ≥ 0`);
  return { pad, flip: o.flip ?? true };
}

/**
 * Augments `src` (n samples of c×h×w) into `out` (which may not be `src`). Draws three numbers per
 * sample from `rng` — shift y, shift x, flip — in that order, whatever the options, so the stream
 * of random numbers does not depend on them.
 */
export function augmentImages(
  src: Float32Array,
  dims: readonly [number, number, number, number],
  options: Required<AugmentOptions>,
  rng: Random,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const [n, c, h, w] = dims;
  const plane = h * w;
  const { pad } = options;
  for (let i = 0; i < n; i++) {
    const dy = rng.int(-pad, pad + 1);
    const dx = rng.int(-pad, pad + 1);
    const flip = options.flip && rng.next() < 0.5;
    for (let ch = 0; ch < c; ch++) {
      const base = (i * c + ch) * plane;
      for (let y = 0; y < h; y++) {
        const sy = y + dy;
        const row = base + y * w;
        if (sy < 0 || sy >= h) {
          out.fill(0, row, row + w);
          continue;
        }
        const srow = base + sy * w;
        for (let x = 0; x < w; x++) {
          // Output x shows source column x + dx of the (optionally flipped) image.
          const fx = x + dx;
          const sx = flip ? w - 1 - fx : fx;
          out[row + x] = fx < 0 || fx >= w ? 0 : src[srow + sx];
        }
      }
    }
  }
  return out;
}
