/**
 * Loading benchmark (issue: foundation). Side by side in one run on the same file:
 *   - read + verify with mobilize vs onnxruntime-node's InferenceSession.create
 *   - read + write (round trip) time
 *   - peak RSS growth of a fresh process that loads and verifies the model, vs the file size
 *
 *   npx tsx bench/load.ts [model.onnx ...] [--runs N] [--write docs/benchmarks.md]
 * Defaults to ../shared/models/tv_mobilenet_v2.onnx.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import { loadModel } from '../src/io/files.js';
import { assertValid } from '../src/ir/verify.js';
import { defaultRegistry } from '../src/ops/index.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 15;
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const models = args.filter((a, i) => !a.startsWith('--') && !['--runs', '--write'].includes(args[i - 1]));
if (models.length === 0) models.push('../shared/models/tv_mobilenet_v2.onnx');

if (process.env.BENCH_CHILD) {
  // Child mode: peak RSS growth of loading + verifying one model in a fresh process.
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 1);
  const m = loadModel(process.env.BENCH_CHILD);
  assertValid(m, 'bench', { registry: defaultRegistry() });
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ growth: peak - before }));
  process.exit(0);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bench(path: string): Promise<string[]> {
  const bytes = readFileSync(path);
  const size = statSync(path).size;
  const ours: number[] = [];
  const theirs: number[] = [];
  const roundTrip: number[] = [];
  const registry = defaultRegistry();
  for (let i = 0; i < runs; i++) {
    // Alternate so both see the same machine state.
    let t = performance.now();
    const m = loadModel(path);
    assertValid(m, path, { registry });
    ours.push(performance.now() - t);
    t = performance.now();
    const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    theirs.push(performance.now() - t);
    await s.release();
    t = performance.now();
    writeOnnx(readOnnx(bytes));
    roundTrip.push(performance.now() - t);
  }
  const child = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname], {
    env: { ...process.env, BENCH_CHILD: path },
    encoding: 'utf8',
  });
  const growth = JSON.parse(child.stdout).growth as number;
  const o = median(ours);
  const r = median(theirs);
  return [
    basename(path),
    `${(size / 2 ** 20).toFixed(1)} MB`,
    `${o.toFixed(1)} ms`,
    `${r.toFixed(1)} ms`,
    `**${(o / r).toFixed(2)}x**`,
    `${median(roundTrip).toFixed(1)} ms`,
    `${(growth / 2 ** 20).toFixed(1)} MB (**${(growth / size).toFixed(2)}x** file)`,
  ];
}

const header = ['model', 'file', 'mobilize load+verify', 'ORT session create', 'ratio', 'read+write', 'peak RSS growth (load+verify)'];
const rows = [header, header.map(() => '---')];
for (const m of models) rows.push(await bench(m));
const table = rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
console.log(table);
if (writeTo) {
  updateSection(
    writeTo,
    'load',
    `Median of ${runs} alternating runs, ${new Date().toISOString().slice(0, 10)}, node ${process.version}, onnxruntime-node ${ort.env.versions.node ?? ''}:\n\n${table}`,
  );
}
