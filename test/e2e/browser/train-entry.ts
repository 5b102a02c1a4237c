/**
 * The page side of test/e2e/browser-train.test.ts, bundled by esbuild: trains the built-in
 * fmnist-cnn with the library's loop on onnxruntime-web (WASM), on images the test hands over.
 */
import * as ort from 'onnxruntime-web';
import { ArrayDataset, buildFmnistCnn, type OrtModule, Tensor, train } from '../../../src/browser.js';

interface Job {
  pixels: number[];
  labels: number[];
  epochs: number;
  batchSize: number;
}

async function run(job: Job): Promise<{ losses: number[]; accuracies: number[]; stepMs: number }> {
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = 1;
  const n = job.labels.length;
  const images = Tensor.from(
    'float32',
    [n, 1, 28, 28],
    Float32Array.from(job.pixels, (p) => p / 255),
  );
  const data = new ArrayDataset('fashion-mnist subset', images, Tensor.from('int64', [n], job.labels));
  const report = await train({
    ort: ort as unknown as OrtModule,
    model: buildFmnistCnn(0),
    data,
    epochs: job.epochs,
    batchSize: job.batchSize,
    lr: 0.01,
    seed: 1,
  });
  return {
    losses: report.epochs.map((e) => e.loss),
    accuracies: report.epochs.map((e) => e.trainAccuracy),
    stepMs: report.stepMs,
  };
}

(globalThis as unknown as { mobilizeTrain: typeof run }).mobilizeTrain = run;
