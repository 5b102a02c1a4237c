/**
 * The recipes behind `mobilize train` and `mobilize distill` (Node): resolve the model (a built-in
 * architecture or an ONNX file to fine-tune), open the data, run the loop of src/train on
 * onnxruntime-node, write a checkpoint after every epoch, and save the trained inference model.
 */
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Dataset } from '../data/dataset.js';
import type { Preprocess } from '../data/preprocess.js';
import { checkFits, openDataset } from '../data/spec.js';
import { badInput } from '../errors.js';
import { evaluate } from '../eval/accuracy.js';
import { assertNotInput, loadModel, type SavedModel, saveModel } from '../io/files.js';
import type { Model } from '../ir/graph.js';
import { assertValid } from '../ir/verify.js';
import { BUILTIN_MODELS } from '../models/fmnist.js';
import { defaultRegistry } from '../ops/index.js';
import { nodeBackend } from '../runtime/node.js';
import type { OrtModule } from '../runtime/ort.js';
import type { AugmentOptions } from '../train/augment.js';
import type { OptimizerConfig, ScheduleConfig } from '../train/optimizer.js';
import type { LossKind } from '../train/step.js';
import { defaultLearningRate, type EpochReport, type StepProgress, TrainingDiverged, type TrainReport, train } from '../train/trainer.js';

export interface TrainRecipe {
  /** A built-in architecture (fmnist-cnn, fmnist-small) or an ONNX file to fine-tune. */
  model: string;
  /** Training data: a spec (default fashion-mnist, i.e. its train split) or an opened dataset. */
  data?: string | Dataset;
  /** Test data: a spec or a dataset (default: fashion-mnist's test split when training on fashion-mnist, else none). */
  testData?: string | Dataset;
  preprocess?: Preprocess;
  epochs?: number;
  batchSize?: number;
  /** Default: 0.03 (Adam/AdamW) or 0.1 (SGD) from scratch; 0.001 or 0.01 when fine-tuning a file. */
  lr?: number;
  optimizer?: OptimizerConfig;
  schedule?: ScheduleConfig;
  loss?: LossKind;
  augment?: AugmentOptions | boolean;
  seed?: number;
  freeze?: string[];
  /** Sparsity masks kept through training (initializer name → 0/1 per value; see TrainOptions.masks). */
  masks?: ReadonlyMap<string, Float32Array>;
  limit?: number;
  testLimit?: number;
  threads?: number;
  /** Folder for a checkpoint after every epoch (`epoch-<k>.onnx`, written atomically). */
  checkpoint?: string;
  output: string;
  distill?: { teacher: string; temperature: number; alpha: number };
  onStep?: (p: StepProgress) => void;
  onEpoch?: (e: EpochReport) => void;
}

export interface TrainRecipeReport extends Omit<TrainReport, 'model'> {
  model: string;
  data: string;
  test?: string;
  output: SavedModel;
  checkpoints: string[];
  /** When distilling: the teacher file and its test accuracy. */
  teacher?: { path: string; testAccuracy?: number; temperature: number; alpha: number };
}

function resolveModel(spec: string, seed: number): { model: Model; file?: string } {
  const build = BUILTIN_MODELS[spec];
  if (build) return { model: build(seed) };
  if (!/\.onnx$/i.test(spec) && !spec.includes('/')) {
    throw badInput(`model ${spec}: not a built-in (${Object.keys(BUILTIN_MODELS).join(', ')}) nor an .onnx file`);
  }
  const model = loadModel(spec);
  assertValid(model, spec, { registry: defaultRegistry() });
  return { model, file: spec };
}

function dataInput(model: Model) {
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) {
    throw badInput(`training feeds one input; the model has ${inputs.length} (${inputs.map((v) => v.name).join(', ') || 'none'})`);
  }
  return inputs[0];
}

export async function runTraining(recipe: TrainRecipe): Promise<TrainRecipeReport> {
  const seed = recipe.seed ?? 0;
  const { model, file } = resolveModel(recipe.model, seed);
  const protect = [file, recipe.distill?.teacher].filter((p): p is string => !!p);
  assertNotInput(recipe.output, protect);
  const teacher = recipe.distill ? loadModel(recipe.distill.teacher) : undefined;
  if (teacher) assertValid(teacher, recipe.distill?.teacher, { registry: defaultRegistry() });

  const input = dataInput(model);
  const dataSpec = recipe.data ?? 'fashion-mnist';
  const data = typeof dataSpec === 'string' ? openDataset(dataSpec, { defaultSplit: 'train', input, ...recipe.preprocess }) : dataSpec;
  const testSpec =
    recipe.testData ?? (typeof dataSpec === 'string' && /^fashion-mnist(:train)?$/.test(dataSpec) ? 'fashion-mnist:test' : undefined);
  const test = typeof testSpec === 'string' ? openDataset(testSpec, { defaultSplit: 'test', input, ...recipe.preprocess }) : testSpec;
  // The teacher reads the same batches: refuse a teacher whose input does not take them, by name.
  if (teacher) {
    try {
      checkFits(data, dataInput(teacher));
    } catch (e) {
      throw badInput(`teacher ${recipe.distill?.teacher}: ${(e as Error).message.replace(/the model's input/, 'its input')}`);
    }
  }

  const optimizer = recipe.optimizer ?? { kind: 'adamw' };
  const lr = recipe.lr ?? defaultLearningRate(optimizer.kind, file !== undefined);
  if (recipe.checkpoint) {
    try {
      mkdirSync(recipe.checkpoint, { recursive: true });
    } catch (e) {
      throw badInput(`--checkpoint ${recipe.checkpoint}: cannot make the folder (${(e as Error).message})`);
    }
  }
  const checkpoints: string[] = [];
  let teacherAccuracy: number | undefined;
  if (teacher && test) teacherAccuracy = (await evaluate(teacher, test, nodeBackend(), { limit: recipe.testLimit })).top1;

  let report: TrainReport;
  try {
    report = await train({
      ort: ort as unknown as OrtModule,
      model,
      data,
      test,
      epochs: recipe.epochs,
      batchSize: recipe.batchSize,
      lr,
      optimizer,
      schedule: recipe.schedule,
      loss: recipe.loss,
      distill: teacher && recipe.distill ? { teacher, temperature: recipe.distill.temperature, alpha: recipe.distill.alpha } : undefined,
      freeze: recipe.freeze,
      masks: recipe.masks,
      augment: recipe.augment,
      seed,
      limit: recipe.limit,
      testLimit: recipe.testLimit,
      threads: recipe.threads,
      onStep: recipe.onStep,
      onEpoch: (e, current) => {
        if (recipe.checkpoint) {
          const path = join(recipe.checkpoint, `epoch-${e.epoch}.onnx`);
          saveModel(current(), path, { protect });
          checkpoints.push(path);
        }
        recipe.onEpoch?.(e);
      },
    });
  } catch (e) {
    if (e instanceof TrainingDiverged) {
      const last = checkpoints[checkpoints.length - 1];
      const kept = last
        ? `the last good checkpoint is ${relative(process.cwd(), last) || last} (epoch ${checkpoints.length})`
        : recipe.checkpoint
          ? 'no epoch had finished, so no checkpoint was written'
          : 'give --checkpoint <dir> to keep one per epoch';
      throw new TrainingDiverged(`${e.message}; ${kept}; ${recipe.output} was not written`, e.step, e.epoch);
    }
    throw e;
  }
  assertValid(report.model, 'trained model', { registry: defaultRegistry() });
  const saved = saveModel(report.model, recipe.output, { protect });
  const { model: _trained, ...rest } = report;
  return {
    ...rest,
    model: recipe.model,
    data: data.name,
    test: test?.name,
    output: saved,
    checkpoints,
    teacher: recipe.distill
      ? {
          path: recipe.distill.teacher,
          testAccuracy: teacherAccuracy,
          temperature: recipe.distill.temperature,
          alpha: recipe.distill.alpha,
        }
      : undefined,
  };
}
