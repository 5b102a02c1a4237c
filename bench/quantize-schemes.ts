/**
 * The quantization schemes side by side, in one run: the seed's linear:<b> and log2, fp16,
 * weight-only int8/int4, and static uint8 for reference, on
 *   1. the trained Fashion-MNIST CNN (bench/fixtures/fmnist_cnn_trained.onnx): top-1 on the
 *      10 000 test images;
 *   2. MobileNetV2 (../shared/models/tv_mobilenet_v2.onnx, random weights): SQNR, cosine and
 *      arg-max agreement against fp32 on 64 Fashion-MNIST images as 224×224 RGB;
 * and for both: file size / fp32, and latency / fp32 on onnxruntime-node (batch 1, 2 threads,
 * spinning off, every model of a table timed in alternation) twice — with default session
 * options, and with `session.disable_quant_qdq=1`, under which onnxruntime constant-folds
 * DequantizeLinear of constant weights at load (by default it keeps every DequantizeLinear for
 * its int8 fusions, so weight-only models dequantize their weights on every run and their Conv
 * weights, no longer constants, miss onnxruntime's prepacked NCHWc kernels).
 *
 *   npx tsx bench/quantize-schemes.ts [--runs N] [--write docs/benchmarks.md]
 */
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { Dataset } from '../src/data/dataset.js';
import { FashionMnist } from '../src/data/fashion-mnist.js';
import { openDataset } from '../src/data/spec.js';
import { evaluate } from '../src/eval/accuracy.js';
import { compareOnData } from '../src/eval/agreement.js';
import { type LatencyResult, measureLatency } from '../src/eval/latency.js';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import { loadModel } from '../src/io/files.js';
import type { Model } from '../src/ir/graph.js';
import { applyInputShapes } from '../src/ops/infer.js';
import { type QuantizeOptions, type QuantizeReport, quantizeModel } from '../src/quantize/index.js';
import type { Backend, Session } from '../src/runtime/backend.js';
import { nodeBackend } from '../src/runtime/node.js';
import { fromOrtTensor, toOrtTensor } from '../src/runtime/ort.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 60;
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const backend = nodeBackend();
const dir = join(tmpdir(), `mobilize-bench-schemes-${process.pid}`);
mkdirSync(dir, { recursive: true });
const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);
const table = (rows: string[][]): string => rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const ratio = (x: number, digits = 2): string => `${x.toFixed(digits)}x`;
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

interface Variant {
  label: string;
  options: Partial<QuantizeOptions> & { scheme: string };
  /** Static int8: disable_quant_qdq would undo its fusion, so the folded column means nothing. */
  static?: boolean;
}

const VARIANTS: Variant[] = [
  { label: 'uint8 (static int8 QDQ, reference)', options: { scheme: 'uint8' }, static: true },
  { label: 'linear:8, per tensor', options: { scheme: 'linear:8' } },
  { label: 'linear:8, per channel', options: { scheme: 'linear:8', perChannel: true } },
  { label: 'linear:8, per channel, --activations', options: { scheme: 'linear:8', perChannel: true, activations: true } },
  { label: 'linear:4, per channel', options: { scheme: 'linear:4', perChannel: true } },
  { label: 'linear:3, per channel', options: { scheme: 'linear:3', perChannel: true } },
  { label: 'linear:2, per channel', options: { scheme: 'linear:2', perChannel: true } },
  { label: 'log2, per tensor', options: { scheme: 'log2' } },
  { label: 'log2, per channel', options: { scheme: 'log2', perChannel: true } },
  { label: 'fp16', options: { scheme: 'fp16' } },
  { label: 'weight-int8', options: { scheme: 'weight-int8' } },
  { label: 'weight-int4 (blocks of 32)', options: { scheme: 'weight-int4' } },
];

/** onnxruntime-node with session.disable_quant_qdq=1 (DequantizeLinear of constants folded at load) for the models in `folded`. */
function latencyBackend(folded: WeakSet<Model>): Backend {
  return {
    name: 'onnxruntime-node (bench)',
    async createSession(model, options = {}) {
      if (model instanceof Uint8Array || !folded.has(model)) return backend.createSession(model, options);
      const session = await ort.InferenceSession.create(writeOnnx(model).model, {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        extra: { session: { disable_quant_qdq: '1', intra_op: { allow_spinning: options.spinning === false ? '0' : '1' } } },
      });
      const s: Session = {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds) {
          const inputs = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toOrtTensor(ort, k, t)]));
          const out = await session.run(inputs);
          return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, fromOrtTensor(t as ort.Tensor)]));
        },
        release: () => session.release(),
      };
      return s;
    },
  };
}

interface Built {
  variant: Variant;
  model: Model;
  report: QuantizeReport;
  bytes: number;
}

async function build(fp32: Model, calib: Dataset): Promise<Built[]> {
  const out: Built[] = [];
  for (const variant of VARIANTS) {
    const model = copy(fp32);
    const report = await quantizeModel(model, { ...variant.options, calib, backend });
    out.push({ variant, model, report, bytes: writeOnnx(model).model.byteLength });
    log(`${variant.label}: ${report.ms.total.toFixed(0)} ms`);
  }
  return out;
}

/** Latency of fp32 and every variant, default and folded, all in alternation; returns median ratios to fp32. */
async function latencies(
  fp32: Model,
  built: Built[],
  shape: number[],
  timedRuns: number,
): Promise<{ fp32: LatencyResult; plain: number[]; folded: number[] }> {
  const fixed = (m: Model): Model => {
    const c = copy(m);
    applyInputShapes(c.graph, { [c.graph.inputs[0].name]: shape });
    return c;
  };
  const folded = new WeakSet<Model>();
  const models = [{ name: 'fp32', model: fixed(fp32) }];
  for (const b of built) {
    models.push({ name: b.variant.label, model: fixed(b.model) });
    const f = fixed(b.model);
    folded.add(f);
    models.push({ name: `${b.variant.label} (folded)`, model: f });
  }
  const results = await measureLatency(models, latencyBackend(folded), { threads: 2, runs: timedRuns, warmup: 5 });
  const base = results[0].medianMs;
  return {
    fp32: results[0],
    plain: built.map((_, i) => results[1 + 2 * i].medianMs / base),
    folded: built.map((_, i) => results[2 + 2 * i].medianMs / base),
  };
}

const HEAD = ['scheme', '{quality}', 'size / fp32', 'latency / fp32', 'latency / fp32, DQ folded at load', 'kept float / notes'];

function row(b: Built, quality: string, fileBytes: number, plain: number, folded: number): string[] {
  const notes = [...b.report.float.map((f) => `${f.op} "${f.node}": ${f.reason}`), ...(b.report.notes ?? [])].join('; ');
  return [b.variant.label, quality, `**${ratio(b.bytes / fileBytes, 3)}**`, ratio(plain), b.variant.static ? '—' : ratio(folded), notes];
}

// ---------------------------------------------------------------- 1. Fashion-MNIST

async function fmnist(): Promise<string> {
  const path = 'bench/fixtures/fmnist_cnn_trained.onnx';
  const fp32 = loadModel(path);
  const input = fp32.graph.inputs[0];
  const test = openDataset('fashion-mnist:test', { input });
  const calib = openDataset('fashion-mnist:train', { input });
  const base = await evaluate(fp32, test, backend);
  const built = await build(fp32, calib);
  const lat = await latencies(fp32, built, [1, 1, 28, 28], runs * 4);
  const fileBytes = statSync(path).size;
  const rows = [HEAD.map((h) => h.replace('{quality}', 'top-1 (drop)')), HEAD.map(() => '---')];
  rows.push(['fp32', pct(base.top1), `1x (${(fileBytes / 1e3).toFixed(0)} KB)`, `1x (${lat.fp32.medianMs.toFixed(3)} ms)`, '', '']);
  for (let i = 0; i < built.length; i++) {
    const q = await evaluate(built[i].model, test, backend);
    const drop = (base.top1 - q.top1) * 100;
    rows.push(row(built[i], `${pct(q.top1)} (${drop.toFixed(2)} pt)`, fileBytes, lat.plain[i], lat.folded[i]));
    log(`fmnist ${built[i].variant.label}: ${pct(q.top1)}`);
  }
  return table(rows);
}

// ---------------------------------------------------------------- 2. MobileNetV2

async function imageFolder(n: number, size: number): Promise<string> {
  const out = join(dir, `fmnist-${size}`);
  mkdirSync(out, { recursive: true });
  const ds = new FashionMnist('train');
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      sharp(Buffer.from(ds.pixels.subarray(i * 784, i * 784 + 784)), { raw: { width: 28, height: 28, channels: 1 } })
        .resize(size, size)
        .toColourspace('srgb')
        .png()
        .toFile(join(out, `${String(i).padStart(4, '0')}.png`)),
    ),
  );
  return out;
}

async function mobilenet(): Promise<string> {
  const path = '../shared/models/tv_mobilenet_v2.onnx';
  const fp32 = loadModel(path);
  const folder = await imageFolder(256, 224);
  const data = openDataset(folder, { input: fp32.graph.inputs[0], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  const built = await build(fp32, data);
  const lat = await latencies(fp32, built, [1, 3, 224, 224], runs);
  const fileBytes = statSync(path).size;
  const rows = [HEAD.map((h) => h.replace('{quality}', 'SQNR (cosine, arg-max agreement)')), HEAD.map(() => '---')];
  rows.push(['fp32', '', `1x (${(fileBytes / 1e6).toFixed(2)} MB)`, `1x (${lat.fp32.medianMs.toFixed(2)} ms)`, '', '']);
  for (let i = 0; i < built.length; i++) {
    const cmp = await compareOnData(fp32, built[i].model, data, backend, { limit: 64 });
    const o = cmp.outputs[0];
    rows.push(
      row(
        built[i],
        `${o.sqnrDb.toFixed(1)} dB (${o.cosine.toFixed(4)}, ${pct(o.top1Agreement ?? 0)})`,
        fileBytes,
        lat.plain[i],
        lat.folded[i],
      ),
    );
    log(`mobilenet ${built[i].variant.label}: ${o.sqnrDb.toFixed(1)} dB`);
  }
  return table(rows);
}

const parts = [
  `${new Date().toISOString().slice(0, 10)}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}; batch 1, 2 intra-op threads, spinning off, all models of a table timed in alternation (${runs * 4} runs for Fashion-MNIST, ${runs} for MobileNetV2):`,
  '',
  '**Fashion-MNIST CNN** (trained fixture; top-1 on the 10 000 test images; calibration, where a scheme calibrates: 256 training images):',
  '',
  await fmnist(),
  '',
  '**MobileNetV2** (random weights; agreement with fp32 on 64 Fashion-MNIST images as 224×224 RGB, ImageNet mean/std; calibration: 256 of them):',
  '',
  await mobilenet(),
];
const body = parts.join('\n');
console.log(body);
if (writeTo) updateSection(writeTo, 'quantize-schemes', body);
