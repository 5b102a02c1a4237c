/** `mobilize train`: flags, progress and the summary; the shared training flags `distill` takes too. */
import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { BUILTIN_MODELS } from '../../models/fmnist.js';
import { runTraining, type TrainRecipe, type TrainRecipeReport } from '../../pipeline/train.js';
import type { OptimizerConfig, ScheduleConfig } from '../../train/optimizer.js';
import type { LossKind } from '../../train/step.js';
import type { EpochReport, StepProgress } from '../../train/trainer.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatBytes } from '../format.js';
import { parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { type Progress, progressBar } from '../progress.js';

export interface TrainingFlags extends DataFlags {
  data: string;
  testData?: string;
  epochs: string;
  batch: string;
  lr?: string;
  optimizer: string;
  momentum?: string;
  nesterov?: boolean;
  weightDecay?: string;
  schedule: string;
  warmup?: string;
  lrStep?: string;
  lrGamma?: string;
  augment?: boolean;
  seed: string;
  freeze?: string[];
  limit?: string;
  testLimit?: string;
  threads?: string;
  checkpoint?: string;
  output: string;
  json?: boolean;
}

interface TrainFlags extends TrainingFlags {
  model: string;
  loss: string;
}

export const BUILTINS = Object.keys(BUILTIN_MODELS).join('|');

export function addTrainingOptions(cmd: Command): Command {
  cmd
    .option(
      '--data <spec>',
      'training data: fashion-mnist (its train split), an .npz with inputs and labels, or an image folder',
      'fashion-mnist',
    )
    .option('--test-data <spec>', 'data to measure test accuracy on after each epoch (default fashion-mnist:test with fashion-mnist)')
    .option('--epochs <n>', 'passes over the training data', '3')
    .option('--batch <n>', 'batch size', '128')
    .option('--lr <x>', 'peak learning rate (default 0.03 for adam/adamw, 0.1 for sgd; 30×/10× less when fine-tuning a file)')
    .option('--optimizer <name>', 'adamw, adam or sgd', 'adamw')
    .option('--momentum <x>', 'SGD momentum (default 0.9)')
    .option('--nesterov', 'Nesterov momentum (sgd)')
    .option('--weight-decay <x>', 'weight decay (default 0.01 for adamw, decoupled; 0 for adam and sgd, added to the gradient)')
    .option('--schedule <name>', 'learning-rate schedule: cosine, step or none', 'cosine')
    .option('--warmup <steps>', 'linear warm-up steps (default 100, at most a tenth of all steps)')
    .option('--lr-step <epochs>', 'step schedule: epochs between decays (default 1)')
    .option('--lr-gamma <x>', 'step schedule: decay factor (default 0.1)')
    .option('--augment', 'random crop (padding 2) and horizontal flip of image samples')
    .option('--seed <n>', 'seeds weights, shuffling and augmentation: the same seed gives the same weights', '0')
    .option('--freeze <names...>', 'initializers kept fixed (exact names, or a prefix ending in *)')
    .option('--limit <n>', 'train on the first n samples only')
    .option('--test-limit <n>', 'measure test accuracy on the first n samples only')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--checkpoint <dir>', 'write the model after every epoch to <dir>/epoch-<k>.onnx')
    .requiredOption('-o, --output <file>', 'the trained model (.onnx, inference form)')
    .option('--json', 'print one JSON object');
  return addDataOptions(cmd);
}

export function parseNumber(flag: string, text: string | undefined, min: number, max = Number.POSITIVE_INFINITY): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || x < min || x > max) {
    throw badInput(`${flag} ${text}: expected a number${max === Number.POSITIVE_INFINITY ? ` ≥ ${min}` : ` in [${min}, ${max}]`}`);
  }
  return x;
}

export function recipeFrom(flags: TrainingFlags): Omit<TrainRecipe, 'model'> {
  const kind = flags.optimizer;
  if (kind !== 'adam' && kind !== 'adamw' && kind !== 'sgd') throw badInput(`--optimizer ${kind}: expected adamw, adam or sgd`);
  if (kind !== 'sgd' && (flags.momentum !== undefined || flags.nesterov))
    throw badInput('--momentum and --nesterov go with --optimizer sgd');
  const optimizer: OptimizerConfig = {
    kind,
    momentum: parseNumber('--momentum', flags.momentum, 0, 0.999999),
    nesterov: flags.nesterov,
    weightDecay: parseNumber('--weight-decay', flags.weightDecay, 0, 1),
  };
  const s = flags.schedule;
  if (s !== 'cosine' && s !== 'step' && s !== 'none') throw badInput(`--schedule ${s}: expected cosine, step or none`);
  if (s !== 'step' && (flags.lrStep !== undefined || flags.lrGamma !== undefined))
    throw badInput('--lr-step and --lr-gamma go with --schedule step');
  const warmup = flags.warmup === undefined ? undefined : parseInteger('--warmup', flags.warmup, 0);
  const schedule: ScheduleConfig | undefined =
    s === 'cosine' && warmup === undefined
      ? undefined
      : {
          kind: s,
          warmup: warmup ?? 0,
          stepEpochs: flags.lrStep === undefined ? undefined : parseInteger('--lr-step', flags.lrStep, 1),
          gamma: parseNumber('--lr-gamma', flags.lrGamma, 0, 1),
        };
  const lr = parseNumber('--lr', flags.lr, 0);
  if (lr === 0) throw badInput('--lr 0: the learning rate must be above 0');
  return {
    data: flags.data,
    testData: flags.testData,
    preprocess: preprocessFrom(flags),
    epochs: parseInteger('--epochs', flags.epochs, 1),
    batchSize: parseInteger('--batch', flags.batch, 1),
    lr,
    optimizer,
    schedule,
    augment: flags.augment ?? false,
    seed: parseInteger('--seed', flags.seed, 0),
    freeze: flags.freeze,
    limit: flags.limit === undefined ? undefined : parseInteger('--limit', flags.limit, 1),
    testLimit: flags.testLimit === undefined ? undefined : parseInteger('--test-limit', flags.testLimit, 1),
    threads: flags.threads === undefined ? undefined : parseInteger('--threads', flags.threads, 1),
    checkpoint: flags.checkpoint,
    output: flags.output,
  };
}

export const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);

/** Progress: one bar per epoch with the running loss, accuracy and speed; a line per finished epoch. */
export function progressHooks(json: boolean | undefined): Pick<TrainRecipe, 'onStep' | 'onEpoch'> {
  if (json) return {};
  let bar: Progress | undefined;
  let current = 0;
  return {
    onStep(p: StepProgress) {
      if (p.epoch !== current) {
        current = p.epoch;
        bar = progressBar(`epoch ${p.epoch}/${p.epochs}`, p.steps, 'steps', 'loss {loss} acc {acc} | {speed} samples/s');
      }
      bar?.update(p.step, { loss: p.loss.toFixed(4), acc: pct(p.accuracy), speed: Math.round(p.samplesPerSecond) });
    },
    onEpoch(e: EpochReport) {
      bar?.stop();
      bar = undefined;
      const parts = e.parts
        ? ` (${Object.entries(e.parts)
            .map(([k, v]) => `${k} ${v.toFixed(4)}`)
            .join(', ')})`
        : '';
      print(
        `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}${parts}, train ${pct(e.trainAccuracy)}, test ${pct(e.testAccuracy)}, ${e.seconds.toFixed(1)} s (${Math.round(e.samplesPerSecond)} samples/s)`,
      );
    },
  };
}

export function summary(r: TrainRecipeReport, json: boolean | undefined): void {
  if (json) {
    printJson({
      model: r.model,
      data: r.data,
      test: r.test,
      output: r.output.path,
      bytes: r.output.bytes,
      epochs: r.epochs,
      testAccuracy: r.testAccuracy,
      seconds: r.seconds,
      stepMs: r.stepMs,
      buildMs: r.buildMs,
      steps: r.steps,
      batchSize: r.batchSize,
      samples: r.samples,
      lr: r.lr,
      optimizer: r.optimizer,
      schedule: r.schedule,
      augment: r.augment ?? null,
      seed: r.seed,
      parameters: r.parameters,
      weights: r.weights,
      frozen: r.frozen,
      nodes: r.nodes,
      checkpoints: r.checkpoints,
      teacher: r.teacher,
    });
    return;
  }
  print(
    `trained ${r.parameters} parameters (${r.weights.length} weights${r.frozen.length ? `, ${r.frozen.length} fixed` : ''}) with ${r.optimizer.kind} at lr ${r.lr}: ${r.steps} steps of ${r.batchSize}, ${r.stepMs.toFixed(1)} ms a step, ${r.seconds.toFixed(1)} s in all`,
  );
  if (r.teacher) print(`teacher ${r.teacher.path}: test ${pct(r.teacher.testAccuracy)}; student: test ${pct(r.testAccuracy)}`);
  print(`wrote ${r.output.path} (${formatBytes(r.output.bytes)})`);
}

export function registerTrain(program: Command): void {
  const train = program
    .command('train')
    .description('train a model on onnxruntime (one ONNX graph: forward, loss, backward, optimizer) and save it for inference')
    .option('--model <model>', `a built-in architecture (${BUILTINS}) or an .onnx file to fine-tune`, 'fmnist-cnn')
    .option('--loss <loss>', 'cross-entropy or mse (against one-hot labels)', 'cross-entropy');
  addTrainingOptions(train).action(async (opts: TrainFlags) => {
    if (opts.loss !== 'cross-entropy' && opts.loss !== 'mse') throw badInput(`--loss ${opts.loss}: expected cross-entropy or mse`);
    const report = await runTraining({ ...recipeFrom(opts), model: opts.model, loss: opts.loss as LossKind, ...progressHooks(opts.json) });
    summary(report, opts.json);
  });
}
