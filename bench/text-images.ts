/**
 * Synthetic text images for the OCR benchmarks: dark words at random places and sizes on light,
 * slightly tinted and noisy paper, rendered from SVG with sharp, seeded so every run draws the same.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Random } from '../src/util/random.js';

const WORDS = [
  'mobilize',
  'phone',
  'int8',
  'Receipt',
  'TOTAL',
  '42.50',
  'Paddle',
  'OCR',
  'hello',
  'world',
  'Invoice',
  '2026',
  'No.7',
  'quantize',
];

/** Synthetic text images: dark words at random places and sizes on light, slightly noisy paper. */
export async function textImages(
  dir: string,
  n: number,
  width: number,
  height: number,
  lines: number,
  seed: number,
  name: string,
): Promise<string> {
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  const rng = new Random(seed);
  const pick = (): string => WORDS[rng.int(0, WORDS.length)];
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const bg = 200 + rng.int(0, 55);
      const texts: string[] = [];
      for (let l = 0; l < lines; l++) {
        const size = lines === 1 ? Math.floor(height * (0.55 + rng.next() * 0.25)) : 14 + rng.int(0, 18);
        const y = lines === 1 ? Math.floor(height * 0.75) : Math.floor(((l + 0.8) * height) / lines);
        const x = rng.int(2, Math.max(3, Math.floor(width * 0.3)));
        const ink = rng.int(0, 80);
        texts.push(
          `<text x="${x}" y="${y}" font-family="DejaVu Sans" font-size="${size}" fill="rgb(${ink},${ink},${ink + rng.int(0, 40)})">${pick()} ${pick()} ${pick()}</text>`,
        );
      }
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="rgb(${bg},${bg - 5},${bg - 15})"/>${texts.join('')}</svg>`;
      return sharp(Buffer.from(svg))
        .png()
        .toFile(join(out, `${String(i).padStart(4, '0')}.png`));
    }),
  );
  return out;
}
