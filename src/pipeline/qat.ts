/**
 * The recipe behind `mobilize qat` (Node): quantization-aware training of a float model.
 *
 *   1. static int8 quantization (src/quantize, calibrated on the training data) places the
 *      Q/DQ pairs and picks the scales: symmetric per-channel int8 weights, per-tensor
 *      activations, int32 biases — the post-training (PTQ) baseline, measured on the test data;
 *   2. toFakeQuant turns it into a trainable graph (float weights through QuantizeLinear →
 *      DequantizeLinear, float biases), trained by src/train with the scales fixed;
 *   3. fromFakeQuant folds the trained weights back into int8 (biases int32): a QDQ model of the
 *      same layout as PTQ's, which `mobilize eval` and the exporters take, measured again.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Dataset } from '../data/dataset.js';
import type { Preprocess } from '../data/preprocess.js';
import { openDataset } from '../data/spec.js';
import { badInput } from '../errors.js';
import { evaluate } from '../eval/accuracy.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { assertNotInput, loadModel, type SavedModel, saveModel } from '../io/files.js';
import type { Model } from '../ir/graph.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { singleInput } from '../quantize/calibrate.js';
import { quantizeModel } from '../quantize/index.js';
import { isQdqModel } from '../quantize/layers.js';
import { nodeBackend } from '../runtime/node.js';
import type { OrtModule } from '../runtime/ort.js';
import { fromFakeQuant, toFakeQuant } from '../train/fake-quant.js';
import type { OptimizerConfig } from '../train/optimizer.js';
import { type EpochReport, type StepProgress, type TrainReport, train } from '../train/trainer.js';

/** Static schemes QAT starts from (src/quantize's names). */
export const QAT_SCHEMES = ['int8', 'uint8'] as const;
export type QatScheme = (typeof QAT_SCHEMES)[number];

/** Peak learning rate of QAT's fine-tuning (AdamW, cosine): small, as the weights start trained. */
export const QAT_DEFAULT_LR = 1e-4;

export interface QatRecipe {
  /** The float model (.onnx); the file is never overwritten. */
  model: string;
  output: string;
  /** Training (and calibration) data spec or dataset (default fashion-mnist, its train split). */
  data?: string | Dataset;
  /** Test data (default fashion-mnist:test when training on fashion-mnist). */
  testData?: string | Dataset;
  preprocess?: Preprocess;
  scheme?: QatScheme;
  /** Calibration samples for the starting scales (default 256, as `mobilize quantize`). */
  calibSize?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: OptimizerConfig;
  seed?: number;
  freeze?: string[];
  limit?: number;
  testLimit?: number;
  threads?: number;
  onStage?: (stage: string) => void;
  onStep?: (p: StepProgress) => void;
  onEpoch?: (e: EpochReport) => void;
}

export interface QatRecipeReport extends Omit<TrainReport, 'model'> {
  model: string;
  data: string;
  test?: string;
  scheme: QatScheme;
  output: SavedModel;
  /** Test accuracy of the float model, of static PTQ (the starting point), and of the QAT model as saved. */
  accuracy: { float?: number; ptq?: number; qat?: number };
  /** Quantized weights and biases trained through fake quantization. */
  fakeQuant: { weights: number; biases: number };
}

function copy(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

export async function runQat(recipe: QatRecipe): Promise<QatRecipeReport> {
  const scheme = recipe.scheme ?? 'int8';
  if (!QAT_SCHEMES.includes(scheme)) throw badInput(`--scheme ${scheme}: quantization-aware training takes ${QAT_SCHEMES.join(' or ')}`);
  assertNotInput(recipe.output, [recipe.model]);
  if (!existsSync(dirname(resolve(recipe.output))))
    throw badInput(`-o ${recipe.output}: folder ${dirname(resolve(recipe.output))} does not exist`);
  const registry = defaultRegistry();
  const float = loadModel(recipe.model);
  assertValid(float, recipe.model, { registry });
  if (isQdqModel(float)) {
    throw badInput(`${recipe.model} is already quantized (QDQ); quantization-aware training starts from the float model`);
  }
  const input = singleInput(float);
  const dataSpec = recipe.data ?? 'fashion-mnist';
  const data = typeof dataSpec === 'string' ? openDataset(dataSpec, { defaultSplit: 'train', input, ...recipe.preprocess }) : dataSpec;
  const testSpec =
    recipe.testData ?? (typeof dataSpec === 'string' && /^fashion-mnist(:train)?$/.test(dataSpec) ? 'fashion-mnist:test' : undefined);
  const test = typeof testSpec === 'string' ? openDataset(testSpec, { defaultSplit: 'test', input, ...recipe.preprocess }) : testSpec;
  const backend = nodeBackend();
  const accuracy = async (m: Model): Promise<number | undefined> =>
    test ? (await evaluate(m, test, backend, { limit: recipe.testLimit, threads: recipe.threads })).top1 : undefined;

  recipe.onStage?.('calibrating (static int8 quantization, the starting point)');
  const qdq = copy(float);
  await quantizeModel(qdq, { scheme, calib: data, calibSize: recipe.calibSize, backend, threads: recipe.threads });
  recipe.onStage?.('measuring the float and PTQ models');
  const floatAccuracy = await accuracy(float);
  const ptqAccuracy = await accuracy(qdq);

  // PTQ is measured: turn qdq into its trainable form in place (train copies it).
  const plan = toFakeQuant(qdq);
  const report = await train({
    ort: ort as unknown as OrtModule,
    model: qdq,
    data,
    test,
    epochs: recipe.epochs ?? 1,
    batchSize: recipe.batchSize,
    lr: recipe.lr ?? QAT_DEFAULT_LR,
    optimizer: recipe.optimizer ?? { kind: 'adamw' },
    freeze: [...plan.fixed, ...(recipe.freeze ?? [])],
    seed: recipe.seed,
    limit: recipe.limit,
    testLimit: recipe.testLimit,
    threads: recipe.threads,
    onStep: recipe.onStep,
    onEpoch: (e) => recipe.onEpoch?.(e),
  });
  const trained = report.model;
  fromFakeQuant(trained, plan);
  assertValid(trained, 'quantization-aware trained model', { registry });
  const qatAccuracy = await accuracy(trained);
  const saved = saveModel(trained, recipe.output, { protect: [recipe.model] });
  const { model: _m, ...rest } = report;
  return {
    ...rest,
    model: recipe.model,
    data: data.name,
    test: test?.name,
    scheme,
    output: saved,
    accuracy: { float: floatAccuracy, ptq: ptqAccuracy, qat: qatAccuracy },
    fakeQuant: { weights: plan.weights.length, biases: plan.biases.length },
  };
}
