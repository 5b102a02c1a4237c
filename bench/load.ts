/**
 * Loading benchmark (foundation issue). Side by side, on the same file:
 *   - warm: median of alternating runs in one process of mobilize's load + verify
 *     (loadModel + assertValid) and onnxruntime-node's InferenceSession.create(path);
 *   - cold: each as the first call in a fresh process (what a CLI invocation pays);
 *   - read + write (round trip) time, warm;
 *   - peak RSS growth of a fresh process that loads and verifies the model, vs the file size.
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
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 21;
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const models = args.filter((a, i) => !a.startsWith('--') && !['--runs', '--write'].includes(args[i - 1]));
if (models.length === 0) models.push('../shared/models/tv_mobilenet_v2.onnx');

/** Child mode: one cold call in a fresh process; prints its time and the peak RSS growth. */
async function child(mode: string, path: string): Promise<void> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 1);
  const t = performance.now();
  if (mode === 'ours') {
    const m = loadModel(path);
    assertValid(m, 'bench', { registry: defaultRegistry() });
  } else {
    await (await ort.InferenceSession.create(path, { logSeverityLevel: 3 })).release();
  }
  const ms = performance.now() - t;
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ ms, growth: peak - before }));
}

function cold(mode: string, path: string): { ms: number; growth: number } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname], {
    env: { ...process.env, BENCH_CHILD: mode, BENCH_MODEL: path },
    encoding: 'utf8',
  });
  return JSON.parse(r.stdout);
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
    let t = performance.now();
    assertValid(loadModel(path), path, { registry });
    ours.push(performance.now() - t);
    // Both start from the file on disk: onnxruntime reads it itself, as loadModel does.
    t = performance.now();
    const s = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
    theirs.push(performance.now() - t);
    await s.release();
    t = performance.now();
    writeOnnx(readOnnx(bytes));
    roundTrip.push(performance.now() - t);
  }
  const coldOurs: number[] = [];
  const coldTheirs: number[] = [];
  const growth: number[] = [];
  for (let i = 0; i < 5; i++) {
    const o = cold('ours', path);
    coldOurs.push(o.ms);
    growth.push(o.growth);
    coldTheirs.push(cold('ort', path).ms);
  }
  const ratio = (a: number, b: number): string => `${a.toFixed(1)} / ${b.toFixed(1)} ms = **${(a / b).toFixed(2)}x**`;
  const g = median(growth);
  return [
    basename(path),
    `${(size / 2 ** 20).toFixed(1)} MB`,
    ratio(median(ours), median(theirs)),
    ratio(median(coldOurs), median(coldTheirs)),
    `${median(roundTrip).toFixed(1)} ms`,
    `${(g / 2 ** 20).toFixed(1)} MB = **${(g / size).toFixed(2)}x**`,
  ];
}

if (process.env.BENCH_CHILD) {
  await child(process.env.BENCH_CHILD, process.env.BENCH_MODEL ?? '');
} else {
  const header = ['model', 'file', 'load+verify / ORT create, warm', 'same, cold (fresh process)', 'read+write', 'peak RSS growth / file'];
  const rows = [header, header.map(() => '---')];
  for (const m of models) rows.push(await bench(m));
  const table = rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
  console.log(table);
  if (writeTo) {
    const when = new Date().toISOString().slice(0, 10);
    updateSection(
      writeTo,
      'load',
      `${when}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}; warm = median of ${runs} alternating runs, cold = median of 5 fresh processes each:\n\n${table}`,
    );
  }
}
