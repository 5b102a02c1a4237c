/**
 * `demo`: the mission's whole path on a built-in default, each stage a library recipe:
 *   train fmnist-cnn on Fashion-MNIST → L1 filter pruning (half the MACs) fine-tuned with
 *   distillation from the trained model → static int8 quantization → export: ONNX for ONNX Runtime
 *   (Mobile), TFLite fp32 and full-int8 → verification on the real runtimes (onnxruntime-node and
 *   the TFLite interpreter in WASM) → a report (report.json and report.html).
 * Every figure in the report is measured in this run; the checks compare stages with each other.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { fashionMnistAvailable } from '../data/fashion-mnist.js';
import { openDataset } from '../data/spec.js';
import { badInput } from '../errors.js';
import { evaluate } from '../eval/accuracy.js';
import { measureLatency, quantile } from '../eval/latency.js';
import { modelStats } from '../eval/stats.js';
import { loadModel, saveModel, writeFileAtomically } from '../io/files.js';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { quantizeModel } from '../quantize/index.js';
import { type CheckRow, type PipelineReportData, renderHtml, type StageRow, type StepRow } from '../report/html.js';
import { nodeBackend } from '../runtime/node.js';
import { loadTflite } from '../runtime/tflite.js';
import { type ExportPrecision, exportModel } from './export.js';
import { runPrune } from './prune.js';
import { runTraining } from './train.js';
import { verifyTflite } from './verify.js';

export interface DemoOptions {
  outDir: string;
  seed?: number;
  /** Training epochs (default 3). */
  epochs?: number;
  /** Fine-tuning epochs after pruning (default 1). */
  finetuneEpochs?: number;
  /** Train on the first `limit` training images only (default all 60k): a quick run. */
  limit?: number;
  /** Evaluate on the first `testLimit` test images (default all 10k). */
  testLimit?: number;
  /** Images the TFLite exports are verified and evaluated on (default: as many as on onnxruntime). */
  verifyLimit?: number;
  onStep?: (step: StepRow) => void;
  /** Progress within the current step. */
  onProgress?: (step: string, done: number, total: number) => void;
}

export interface DemoReport extends PipelineReportData {
  ok: boolean;
  outDir: string;
  files: { report: string; html: string };
}

/** Allowed top-1 differences (points) between stages for the demo's checks. */
export const DEMO_LIMITS = { prune: 1.0, int8: 0.5, tfliteInt8VsOrt: 0.2 } as const;

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  if (!fashionMnistAvailable()) {
    throw badInput(
      'the demo trains on Fashion-MNIST, which is not installed: run scripts/setup.sh (Debian package dataset-fashion-mnist) or set MOBILIZE_FASHION_MNIST to a folder with its four .gz files',
    );
  }
  const seed = options.seed ?? 0;
  const dir = options.outDir;
  mkdirSync(dir, { recursive: true });
  const backend = nodeBackend();
  const steps: StepRow[] = [];
  const time = async <T>(step: string, f: () => Promise<T>, detail: (r: T) => string): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    const s = { step, ms: performance.now() - t0, detail: detail(r) };
    steps.push(s);
    options.onStep?.(s);
    return r;
  };
  const progress = (step: string) => (done: number, total: number) => options.onProgress?.(step, done, total);
  const testLimit = options.testLimit;
  const path = (name: string) => join(dir, name);

  // ---- train
  const trained = await time(
    'train',
    () =>
      runTraining({
        model: 'fmnist-cnn',
        data: 'fashion-mnist',
        epochs: options.epochs ?? 3,
        seed,
        limit: options.limit,
        testLimit,
        output: path('fmnist-cnn.onnx'),
        onStep: (p) => options.onProgress?.('train', (p.epoch - 1) * p.steps + p.step, p.epochs * p.steps),
      }),
    (r) => `fmnist-cnn, ${r.epochs.length} epoch${r.epochs.length === 1 ? '' : 's'}, test top-1 ${pct(r.testAccuracy ?? 0)}`,
  );

  // ---- prune + fine-tune with distillation from the trained model
  const pruned = await time(
    'prune',
    () =>
      runPrune({
        input: trained.output.path,
        output: path('fmnist-cnn.pruned.onnx'),
        method: 'l1-filter',
        flops: 0.5,
        finetuneEpochs: options.finetuneEpochs ?? 1,
        distill: true,
        data: 'fashion-mnist',
        seed,
        limit: options.limit,
        testLimit,
        latencyRuns: 0,
        onProgress: (phase, done, total) => options.onProgress?.(`prune: ${phase}`, done, total),
      }),
    (r) =>
      `L1 filters, MACs ${r.before.macs} → ${r.after.macs}, top-1 after pruning ${pct(r.accuracyPruned ?? 0)}, after fine-tuning ${pct(r.after.accuracy ?? 0)}`,
  );

  // ---- quantize (uint8 activations: what onnxruntime fuses on x86; the TFLite exporter converts to int8)
  const calib = openDataset('fashion-mnist:train', { defaultSplit: 'train' });
  const prunedModel = loadModel(pruned.output.path);
  const int8Path = path('fmnist-cnn.pruned.int8.onnx');
  const quant = await time(
    'quantize',
    async () => {
      const m = loadModel(pruned.output.path);
      const r = await quantizeModel(m, { scheme: 'uint8', calib, calibSize: 512, backend, onProgress: progress('quantize') });
      return { report: r, saved: saveModel(m, int8Path) };
    },
    ({ report: r }) =>
      `static int8 QDQ, ${Object.values(r.quantized).reduce((a, b) => a + b, 0)} nodes in 8 bits, calibrated on 512 images`,
  );
  const int8Model = loadModel(int8Path);

  // ---- export
  const mobilePath = path('fmnist-cnn.mobile.onnx');
  await time(
    'export onnx',
    async () => {
      const r = await exportModel(loadModel(int8Path), { target: 'onnx', backend });
      if (!r.onnx) throw new Error('the ONNX export returned no model');
      return saveModel(r.onnx, mobilePath);
    },
    (s) => `${s.path} (${s.bytes} bytes), for ONNX Runtime and ONNX Runtime Mobile`,
  );
  const tflite = async (precision: ExportPrecision, source: string, file: string) => {
    const r = await exportModel(loadModel(source), {
      target: 'tflite',
      precision,
      backend,
      // int8 takes its parameters from the QDQ model, which keeps the classifier's output (the logits)
      // in float: that last FULLY_CONNECTED stays float here too. Calibrating the logits as well gives
      // a full-integer file, but 8-bit logits flipped 3% of this model's predictions (docs/benchmarks.md).
      onProgress: (stage, d, t) => options.onProgress?.(`export ${stage}`, d, t),
    });
    if (!r.tflite) throw new Error('the TFLite export returned no file');
    writeFileAtomically(file, r.tflite);
    return { bytes: r.tflite, report: r.report };
  };
  const tfFp32 = await time(
    'export tflite fp32',
    () => tflite('fp32', pruned.output.path, path('fmnist-cnn.pruned.tflite')),
    (r) => `${r.report.tflite?.operators} operators, ${r.report.tflite?.transposes} Transposes, ${r.bytes.byteLength} bytes`,
  );
  const tfInt8 = await time(
    'export tflite int8',
    () => tflite('int8', int8Path, path('fmnist-cnn.pruned.int8.tflite')),
    (r) => `${r.report.tflite?.operators} operators (${histogram(r.report.tflite?.opHistogram)}), ${r.bytes.byteLength} bytes`,
  );

  // ---- verify and measure on the real runtimes
  const test: Dataset = openDataset('fashion-mnist:test', { defaultSplit: 'test' });
  const verifyLimit = options.verifyLimit ?? testLimit ?? 10000;
  const ortRow = async (stage: string, model: Model, file: string, bytes: number, note?: string): Promise<StageRow> => {
    const acc = await evaluate(model, test, backend, { limit: testLimit, onProgress: progress(`eval ${stage}`) });
    const lat = await measureLatency([{ name: stage, model }], backend, { runs: 200, warmup: 20 });
    const stats = modelStats(model);
    return {
      stage,
      runtime: 'onnxruntime-node',
      file,
      bytes,
      params: stats.params,
      macs: stats.macs,
      top1: acc.top1,
      latencyMs: lat[0].medianMs,
      note,
    };
  };
  const rows: StageRow[] = [];
  await time(
    'evaluate onnx',
    async () => {
      rows.push(await ortRow('trained fp32', loadModel(trained.output.path), trained.output.path, trained.output.bytes));
      rows.push(
        await ortRow(
          'pruned fp32',
          prunedModel,
          pruned.output.path,
          pruned.output.bytes,
          `L1 filters, −${((1 - pruned.after.macs / pruned.before.macs) * 100).toFixed(0)}% MACs, KD fine-tune`,
        ),
      );
      rows.push(await ortRow('pruned int8', int8Model, int8Path, quant.saved.bytes, 'static int8 QDQ (U8S8)'));
    },
    () => `top-1 on ${testLimit ?? 10000} test images, latency at batch 1 (median of 200)`,
  );
  const verifyFp32 = await time(
    'verify tflite fp32',
    () =>
      verifyTflite(tfFp32.bytes, prunedModel, {
        backend,
        data: test,
        limit: verifyLimit,
        name: 'fmnist-cnn.pruned.tflite',
        onProgress: progress('verify fp32'),
      }),
    (r) => `TFLite interpreter (${r.build}) vs onnxruntime on ${r.samples} images: worst relative error ${r.worst.toExponential(2)}`,
  );
  const verifyInt8 = await time(
    'verify tflite int8',
    () =>
      verifyTflite(tfInt8.bytes, int8Model, {
        backend,
        data: test,
        limit: verifyLimit,
        tolerance: 1,
        name: 'fmnist-cnn.pruned.int8.tflite',
        onProgress: progress('verify int8'),
      }),
    (r) =>
      `TFLite int8 top-1 ${pct(r.accuracy?.tflite ?? 0)} vs QDQ on onnxruntime ${pct(r.accuracy?.reference ?? 0)} on ${r.samples} images`,
  );
  rows.push({
    stage: 'TFLite fp32',
    runtime: `tflite (wasm ${verifyFp32.build})`,
    file: path('fmnist-cnn.pruned.tflite'),
    bytes: tfFp32.bytes.byteLength,
    top1: verifyFp32.accuracy?.tflite ?? null,
    latencyMs: await tfliteLatency(tfFp32.bytes),
    note: `on ${verifyFp32.samples} test images; ${tfFp32.report.tflite?.transposes ?? 0} Transposes`,
  });
  rows.push({
    stage: 'TFLite int8',
    runtime: `tflite (wasm ${verifyInt8.build})`,
    file: path('fmnist-cnn.pruned.int8.tflite'),
    bytes: tfInt8.bytes.byteLength,
    top1: verifyInt8.accuracy?.tflite ?? null,
    latencyMs: await tfliteLatency(tfInt8.bytes),
    note: `on ${verifyInt8.samples} test images; int8 but for the float classifier layer, as in the QDQ model`,
  });

  // ---- checks
  const [base, prunedRow, int8Row] = rows;
  const drop = (a: StageRow, b: StageRow) => ((a.top1 ?? 0) - (b.top1 ?? 0)) * 100;
  const checks: CheckRow[] = [
    {
      name: `pruning costs ≤ ${DEMO_LIMITS.prune} pt top-1`,
      ok: drop(base, prunedRow) <= DEMO_LIMITS.prune,
      detail: `${pct(base.top1 ?? 0)} → ${pct(prunedRow.top1 ?? 0)} with ${((1 - pruned.after.macs / pruned.before.macs) * 100).toFixed(0)}% fewer MACs`,
    },
    {
      name: `int8 costs ≤ ${DEMO_LIMITS.int8} pt top-1`,
      ok: drop(prunedRow, int8Row) <= DEMO_LIMITS.int8,
      detail: `${pct(prunedRow.top1 ?? 0)} → ${pct(int8Row.top1 ?? 0)}`,
    },
    {
      name: 'TFLite fp32 export matches onnxruntime',
      ok: verifyFp32.passed,
      detail: `worst error ${verifyFp32.worst.toExponential(2)} of the output scale (tolerance ${verifyFp32.tolerance})`,
    },
    {
      name: `TFLite int8 export within ${DEMO_LIMITS.tfliteInt8VsOrt} pt of the int8 model on onnxruntime`,
      ok:
        verifyInt8.accuracy !== undefined &&
        Math.abs(verifyInt8.accuracy.tflite - verifyInt8.accuracy.reference) * 100 <= DEMO_LIMITS.tfliteInt8VsOrt,
      detail: verifyInt8.accuracy ? `${pct(verifyInt8.accuracy.tflite)} vs ${pct(verifyInt8.accuracy.reference)}` : 'no accuracy measured',
    },
  ];
  const report: PipelineReportData = {
    title: 'mobilize demo: Fashion-MNIST CNN, from training to the phone runtimes',
    createdAt: new Date().toISOString(),
    dataset: `Fashion-MNIST test set (${testLimit ?? 10000} images on onnxruntime, ${verifyLimit} on TFLite)`,
    stages: rows,
    checks,
    steps,
  };
  const files = { report: path('report.json'), html: path('report.html') };
  const full: DemoReport = { ok: checks.every((c) => c.ok), outDir: dir, files, ...report };
  writeFileAtomically(files.report, `${JSON.stringify({ ...full, quantize: quant.report }, null, 2)}\n`);
  writeFileAtomically(files.html, renderHtml(report));
  return full;
}

/** Median time of one invocation on the TFLite interpreter (batch 1, inputs fed once, 20 warm-up runs). */
async function tfliteLatency(bytes: Uint8Array, runs = 200): Promise<number> {
  const runner = await loadTflite(bytes);
  try {
    const feeds: Record<string, Tensor> = {};
    for (const i of runner.inputs) feeds[i.name] = Tensor.zeros(i.dtype, i.shape);
    await runner.run(feeds);
    for (let k = 0; k < 20; k++) runner.invoke();
    const times: number[] = [];
    for (let k = 0; k < runs; k++) {
      const t0 = performance.now();
      runner.invoke();
      times.push(performance.now() - t0);
    }
    return quantile(
      times.sort((a, b) => a - b),
      0.5,
    );
  } finally {
    runner.dispose();
  }
}

function histogram(ops: Record<string, number> | undefined): string {
  return Object.entries(ops ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}
