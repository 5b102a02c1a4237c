/**
 * The training loop: epochs of shuffled batches through the training graph of step.ts on
 * onnxruntime (onnxruntime-node in Node, onnxruntime-web in the browser — the caller passes the
 * module in, so this file stays browser-safe).
 *
 * The state (weights, running statistics, optimizer state) lives as onnxruntime tensors between
 * steps: the outputs of one run are the inputs of the next, never turned into JS numbers. The
 * next batch is requested before the current step is awaited, so a dataset that loads
 * asynchronously (an image folder decoded on libuv's threads) overlaps with onnxruntime; in-memory
 * data (Fashion-MNIST) is made synchronously in about 2% of a step's time (docs/benchmarks.md).
 *
 * Reproducible: the same seed gives the same shuffles and augmentations, and onnxruntime's CPU
 * kernels are deterministic, so the same seed gives the same weights (models with Dropout
 * excepted: onnxruntime draws its masks from its own generator).
 */
import type * as OrtCommon from 'onnxruntime-common';
import { type Dataset, sampleOrder } from '../data/dataset.js';
import { badInput, firstLine, MobilizeError } from '../errors.js';
import { countHits } from '../eval/accuracy.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { OrtModule } from '../runtime/ort.js';
import { Random } from '../util/random.js';
import { type AugmentOptions, augmentImages, resolveAugment } from './augment.js';
import { learningRate, type OptimizerConfig, resolveOptimizer, type ScheduleConfig } from './optimizer.js';
import { buildTrainingStep, type DistillConfig, exportModel, type LossKind, type TrainingStep } from './step.js';

type OrtTensor = OrtCommon.Tensor;
type OrtSession = OrtCommon.InferenceSession;

/** The loss became NaN or infinite: training stopped (exit code 1). */
export class TrainingDiverged extends MobilizeError {
  /** The 1-based global step whose loss was not finite, and its epoch. */
  readonly step: number;
  readonly epoch: number;

  constructor(message: string, step: number, epoch: number) {
    super(message, { exitCode: 1 });
    this.name = 'TrainingDiverged';
    this.step = step;
    this.epoch = epoch;
  }
}

export interface SessionConfig {
  /** Intra-op threads (onnxruntime-node; onnxruntime-web takes env.wasm.numThreads). */
  threads?: number;
}

export interface StepResult {
  loss: number;
  /** The loss's parts when it has several (`kd_loss`, `ce_loss` when distilling). */
  parts: Record<string, number>;
  /** The logits of the batch, [n, classes], before this step's update. */
  logits: Float32Array;
}

async function createSession(ort: OrtModule, model: Model, config: SessionConfig, what: string): Promise<OrtSession> {
  const options: OrtCommon.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 4,
  };
  if (config.threads !== undefined) {
    options.intraOpNumThreads = config.threads;
    options.interOpNumThreads = 1;
  }
  try {
    return await ort.InferenceSession.create(writeOnnx(model).model, options);
  } catch (e) {
    throw badInput(`onnxruntime cannot load the ${what}: ${firstLine(e)}`, e);
  }
}

/**
 * One training graph on onnxruntime with its state: `run` takes a batch and a learning rate and
 * moves the state one step; `values`/`exportModel` read the learned values back; `evaluate` runs
 * the inference graph with the current values.
 */
export class TrainingSession {
  readonly step: TrainingStep;
  private readonly ort: OrtModule;
  private readonly session: OrtSession;
  private readonly config: SessionConfig;
  private evalSession: OrtSession | undefined;
  private state: Record<string, OrtTensor> = {};
  private readonly fetches: string[];

  private constructor(ort: OrtModule, step: TrainingStep, session: OrtSession, config: SessionConfig) {
    this.ort = ort;
    this.step = step;
    this.session = session;
    this.config = config;
    for (const s of step.state) this.state[s.name] = this.tensor(s.init);
    this.fetches = [step.loss, step.logits, ...step.lossParts, ...step.state.map((s) => s.next)];
  }

  static async create(ort: OrtModule, step: TrainingStep, config: SessionConfig = {}): Promise<TrainingSession> {
    const session = await createSession(ort, step.model, config, 'training graph');
    // A state input onnxruntime does not list would be silently replaced by a constant.
    const listed = new Set(session.inputNames);
    const missing = [step.input, step.labels, step.lr, ...step.state.map((s) => s.name)].filter((n) => !listed.has(n));
    if (missing.length > 0) {
      await session.release();
      throw new Error(`onnxruntime does not take the training inputs ${missing.join(', ')}`);
    }
    return new TrainingSession(ort, step, session, config);
  }

  private tensor(t: Tensor): OrtTensor {
    return new this.ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.dims]);
  }

  /**
   * One step on a batch: `input` float32 [n, …], `labels` the class of each sample. The state
   * moves on only when the loss is finite, so after a NaN the values are still the last good ones.
   */
  async run(input: Tensor, labels: ArrayLike<number | bigint>, lr: number): Promise<StepResult> {
    const n = input.dims[0];
    const feeds: Record<string, OrtTensor> = { ...this.state };
    feeds[this.step.input] = this.tensor(input);
    feeds[this.step.labels] = this.labelTensor(labels, n);
    feeds[this.step.lr] = new this.ort.Tensor('float32', Float32Array.of(lr), []);
    let out: OrtCommon.InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds, this.fetches);
    } catch (e) {
      throw badInput(`onnxruntime failed to run the training step: ${firstLine(e)}`, e);
    }
    const loss = Number((out[this.step.loss] as OrtTensor).data[0]);
    const parts: Record<string, number> = {};
    for (const p of this.step.lossParts) parts[p] = Number((out[p] as OrtTensor).data[0]);
    if (Number.isFinite(loss)) {
      for (const s of this.step.state) this.state[s.name] = out[s.next] as OrtTensor;
    }
    return { loss, parts, logits: (out[this.step.logits] as OrtTensor).data as Float32Array };
  }

  private labelTensor(labels: ArrayLike<number | bigint>, n: number): OrtTensor {
    if (this.step.lossKind !== 'mse') {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(labels[i]);
      return new this.ort.Tensor('int64', out, [n]);
    }
    // MSE against one-hot targets.
    const c = this.step.classes as number;
    const t = new Float32Array(n * c);
    for (let i = 0; i < n; i++) t[i * c + Number(labels[i])] = 1;
    return new this.ort.Tensor('float32', t, [n, c]);
  }

  /** The current weights and running statistics, by name. */
  values(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const s of this.step.state) {
      if (s.role === 'optimizer') continue;
      const t = this.state[s.name];
      out.set(s.name, Tensor.from('float32', t.dims.map(Number), t.data as Float32Array));
    }
    return out;
  }

  /** The inference model with the current values (BatchNormalization in inference mode). */
  exportModel(): Model {
    return exportModel(this.step, this.values());
  }

  /** Top-1 accuracy of the current values on a labelled dataset (the inference graph, running statistics). */
  async evaluate(data: Dataset, options: { batchSize?: number; limit?: number } = {}): Promise<{ accuracy: number; n: number }> {
    this.evalSession ??= await createSession(this.ort, this.step.evaluation, this.config, 'evaluation graph');
    const batchSize = this.step.fixedBatch ?? options.batchSize ?? 500;
    const order = sampleOrder(data.size, { limit: options.limit });
    const classes = this.step.classes;
    const weights: Record<string, OrtTensor> = {};
    for (const s of this.step.state) if (s.role !== 'optimizer') weights[s.name] = this.state[s.name];
    let hits = 0;
    let n = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.subarray(start, Math.min(order.length, start + batchSize));
      if (this.step.fixedBatch !== undefined && idx.length !== this.step.fixedBatch) break;
      const batch = await data.batch(idx);
      const out = await this.evalSession.run({ ...weights, [this.step.input]: this.tensor(batch.input) }, [this.step.logits]);
      const logits = out[this.step.logits] as OrtTensor;
      const c = classes ?? Number(logits.dims[1]);
      const labels = batch.label?.data as BigInt64Array;
      hits += countHits(logits.data as Float32Array, c, labels, idx.length).top1;
      n += idx.length;
    }
    return { accuracy: n > 0 ? hits / n : Number.NaN, n };
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.evalSession?.release();
  }
}

// ---------------------------------------------------------------- the loop

export interface TrainOptions {
  /** onnxruntime-node or onnxruntime-web (`import * as ort from 'onnxruntime-…'`). */
  ort: OrtModule;
  /** The inference model to train (not modified). */
  model: Model;
  /** Labelled training data (samples shaped like the model's input). */
  data: Dataset;
  /** Labelled test data, evaluated after every epoch. */
  test?: Dataset;
  /** Default 3. */
  epochs?: number;
  /** Default 128. */
  batchSize?: number;
  /** Peak learning rate (default: defaultLearningRate, from scratch). */
  lr?: number;
  /** Default AdamW. */
  optimizer?: OptimizerConfig;
  /** Default cosine with 100 warm-up steps (fewer when training is shorter than 10× that). */
  schedule?: ScheduleConfig;
  loss?: LossKind;
  distill?: DistillConfig;
  /** Initializers kept fixed (exact names, or a prefix ending in `*`). */
  freeze?: readonly string[];
  /**
   * Sparsity masks, initializer name → 0/1 per value (same size): masked weights are zeroed
   * before training, stay exactly zero through every update (inside the training graph, no
   * per-step JS work) and are zero in the returned model. For fine-tuning after pruning.
   */
  masks?: ReadonlyMap<string, Float32Array>;
  /** The output holding the logits (default the model's first). */
  output?: string;
  /** Random crop with padding and horizontal flip, for N×C×H×W images (default off). */
  augment?: AugmentOptions | boolean;
  /** Seeds the shuffles and augmentations (default 0). */
  seed?: number;
  /** Train on the first `limit` samples only; evaluate on the first `testLimit`. */
  limit?: number;
  testLimit?: number;
  threads?: number;
  /** Called after every step. */
  onStep?: (p: StepProgress) => void;
  /** Called after every epoch (after its evaluation), with the model as it is then. Awaited. */
  onEpoch?: (e: EpochReport, model: () => Model) => void | Promise<void>;
}

export interface StepProgress {
  epoch: number;
  epochs: number;
  /** Step within the epoch (1-based) and steps per epoch. */
  step: number;
  steps: number;
  /** Mean loss and training accuracy of the epoch so far. */
  loss: number;
  accuracy: number;
  samplesPerSecond: number;
  lr: number;
}

export interface EpochReport {
  epoch: number;
  steps: number;
  samples: number;
  /** Mean training loss over the epoch's batches, and its parts when distilling. */
  loss: number;
  parts?: Record<string, number>;
  /** Training accuracy: the batches' logits before each update (BatchNormalization in training mode). */
  trainAccuracy: number;
  testAccuracy?: number;
  /** Seconds spent training (evaluation excluded), and samples per second. */
  seconds: number;
  samplesPerSecond: number;
  evalSeconds?: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
}

export interface TrainReport {
  model: Model;
  epochs: EpochReport[];
  steps: number;
  batchSize: number;
  samples: number;
  seconds: number;
  /** Median time of one training step, warm-up step excluded. */
  stepMs: number;
  /** Time to build the training graph and load it into onnxruntime. */
  buildMs: number;
  testAccuracy?: number;
  weights: string[];
  frozen: string[];
  /** The masked initializers and how many of their values stayed at zero. */
  masked: TrainingStep['masked'];
  parameters: number;
  nodes: { inference: number; training: number };
  optimizer: Required<OptimizerConfig>;
  schedule: ScheduleConfig;
  lr: number;
  augment?: Required<AugmentOptions>;
  seed: number;
}

/**
 * Default peak learning rates. From scratch: 0.03 for Adam/AdamW (with warm-up and a cosine
 * decay; tuned on fmnist-cnn, docs/benchmarks.md) and 0.1 for SGD; fine-tuning trained weights
 * takes 30× and 10× less.
 */
export function defaultLearningRate(kind: OptimizerConfig['kind'], fineTuning = false): number {
  if (kind === 'sgd') return fineTuning ? 0.01 : 0.1;
  return fineTuning ? 0.001 : 0.03;
}

/** Refuses data whose samples do not match the model's input (dims beyond the batch, dtype). */
function checkData(ds: Dataset, step: TrainingStep, what: string): void {
  if (!ds.hasLabels) throw badInput(`${ds.name} has no labels; ${what} needs labelled data`);
  if (ds.dtype !== 'float32') throw badInput(`${ds.name} holds ${ds.dtype} data; the model's input "${step.input}" takes float32`);
  const want = step.sampleDims;
  const ok = want.length === ds.sampleDims.length && want.every((d, i) => typeof d !== 'number' || d === ds.sampleDims[i]);
  if (!ok) {
    const shape = (dims: ReadonlyArray<number | string | null>) => `[${dims.map((d) => d ?? '?').join(',')}]`;
    throw badInput(
      `${ds.name} holds samples of shape ${shape(ds.sampleDims)} but the model's input "${step.input}" takes ${shape(['N', ...want])}`,
    );
  }
  if (ds.classes !== undefined && step.classes !== undefined && ds.classes > step.classes) {
    throw badInput(`${ds.name} has labels up to ${ds.classes - 1}, but the model scores ${step.classes} classes`);
  }
}

function checkLabels(labels: ArrayLike<number | bigint>, classes: number | undefined, ds: Dataset): void {
  if (classes === undefined) return;
  for (let i = 0; i < labels.length; i++) {
    const l = Number(labels[i]);
    if (!(l >= 0 && l < classes))
      throw badInput(`${ds.name} has label ${labels[i]}, but the model scores ${classes} classes (0–${classes - 1})`);
  }
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Prepared {
  input: Tensor;
  labels: BigInt64Array;
}

/**
 * Trains `options.model` and returns the trained inference model with a per-epoch report.
 * Throws TrainingDiverged (exit code 1) when the loss stops being finite, and a one-line
 * MobilizeError (exit code 2) for data or a model it cannot train.
 */
export async function train(options: TrainOptions): Promise<TrainReport> {
  const t0 = performance.now();
  const epochs = options.epochs ?? 3;
  const batchSize = options.batchSize ?? 128;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(epochs) || epochs < 1) throw badInput(`epochs ${epochs}: expected a whole number ≥ 1`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw badInput(`batch size ${batchSize}: expected a whole number ≥ 1`);
  const optimizer = resolveOptimizer(options.optimizer ?? { kind: 'adamw' });
  const lr = options.lr ?? defaultLearningRate(optimizer.kind);
  if (!(lr > 0) || !Number.isFinite(lr)) throw badInput(`learning rate ${lr}: expected a number above 0`);
  const augment = resolveAugment(options.augment);

  const step = buildTrainingStep(options.model, {
    optimizer,
    loss: options.loss,
    distill: options.distill,
    freeze: options.freeze,
    masks: options.masks,
    output: options.output,
  });
  const data = options.data;
  checkData(data, step, 'training');
  if (options.test) checkData(options.test, step, 'evaluation');
  if (step.fixedBatch !== undefined && step.fixedBatch !== batchSize) {
    throw badInput(`the model's input "${step.input}" has a fixed batch of ${step.fixedBatch}; train with batch size ${step.fixedBatch}`);
  }
  if (augment && step.sampleDims.length !== 3) {
    throw badInput(`augmentation needs image samples C×H×W; the model's input takes [${step.sampleDims.join(',')}]`);
  }
  if (step.lossKind === 'mse' && step.classes === undefined)
    throw badInput('an MSE loss needs the number of classes fixed in the logits shape');
  const classes = step.classes ?? data.classes;

  const base = sampleOrder(data.size, { limit: options.limit });
  const n = base.length;
  const perBatch = Math.min(batchSize, n);
  // The last partial batch is dropped (a new shuffle each epoch covers it): full batches keep
  // BatchNormalization's statistics steady and onnxruntime's memory plan fixed.
  const steps = Math.max(1, Math.floor(n / perBatch));
  const total = steps * epochs;
  const schedule: ScheduleConfig = options.schedule ?? { kind: 'cosine', warmup: Math.min(100, Math.floor(total / 10)) };
  const shuffleRng = new Random(seed);
  const augmentRng = new Random((seed ^ 0x5bd1e995) >>> 0);

  const session = await TrainingSession.create(options.ort, step, { threads: options.threads });
  const buildMs = performance.now() - t0;
  const reports: EpochReport[] = [];
  const stepTimes: number[] = [];
  const prepare = async (order: Int32Array, k: number): Promise<Prepared> => {
    const batch = await data.batch(order.subarray(k * perBatch, (k + 1) * perBatch));
    const labels = batch.label?.data as BigInt64Array;
    checkLabels(labels, classes, data);
    let input = batch.input;
    if (augment) {
      const [c, h, w] = input.dims.slice(1);
      const x = augmentImages(input.data as Float32Array, [input.dims[0], c, h, w], augment, augmentRng);
      input = Tensor.from('float32', input.dims, x);
    }
    return { input, labels };
  };

  try {
    let globalStep = 0;
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const order = Int32Array.from(base);
      for (let i = order.length - 1; i > 0; i--) {
        const j = shuffleRng.int(0, i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      let lossSum = 0;
      const partSums: Record<string, number> = {};
      let hits = 0;
      let seen = 0;
      let rate = lr;
      const start = performance.now();
      let pending: Promise<Prepared> | undefined = prepare(order, 0);
      for (let k = 0; k < steps; k++) {
        const batch = await (pending as Promise<Prepared>);
        rate = learningRate(lr, schedule, globalStep, total, steps);
        const ts = performance.now();
        const running = session.run(batch.input, batch.labels, rate);
        // Ask for the next batch before waiting on this step.
        pending = k + 1 < steps ? prepare(order, k + 1) : undefined;
        pending?.catch(() => {});
        const result = await running;
        stepTimes.push(performance.now() - ts);
        globalStep++;
        if (!Number.isFinite(result.loss)) {
          throw new TrainingDiverged(
            `the loss became ${result.loss} at step ${globalStep} (epoch ${epoch}, batch ${k + 1} of ${steps}); stopped there, keeping the weights of the step before; try a lower learning rate (it was ${rate.toPrecision(3)})`,
            globalStep,
            epoch,
          );
        }
        const m = batch.input.dims[0];
        lossSum += result.loss * m;
        for (const [p, v] of Object.entries(result.parts)) partSums[p] = (partSums[p] ?? 0) + v * m;
        hits += countHits(result.logits, classes ?? result.logits.length / m, batch.labels, m).top1;
        seen += m;
        options.onStep?.({
          epoch,
          epochs,
          step: k + 1,
          steps,
          loss: lossSum / seen,
          accuracy: hits / seen,
          samplesPerSecond: seen / ((performance.now() - start) / 1000),
          lr: rate,
        });
      }
      const seconds = (performance.now() - start) / 1000;
      const report: EpochReport = {
        epoch,
        steps,
        samples: seen,
        loss: lossSum / seen,
        trainAccuracy: hits / seen,
        seconds,
        samplesPerSecond: seen / seconds,
        lr: rate,
      };
      if (step.lossParts.length > 0) report.parts = Object.fromEntries(Object.entries(partSums).map(([p, v]) => [p, v / seen]));
      if (options.test) {
        const te = performance.now();
        report.testAccuracy = (await session.evaluate(options.test, { limit: options.testLimit })).accuracy;
        report.evalSeconds = (performance.now() - te) / 1000;
      }
      reports.push(report);
      await options.onEpoch?.(report, () => session.exportModel());
    }
    const model = session.exportModel();
    return {
      model,
      epochs: reports,
      steps: globalStep,
      batchSize: perBatch,
      samples: n,
      seconds: (performance.now() - t0) / 1000,
      stepMs: median(stepTimes.slice(1)),
      buildMs,
      testAccuracy: reports[reports.length - 1].testAccuracy,
      weights: step.weights,
      frozen: step.frozen,
      masked: step.masked,
      parameters: step.state.filter((s) => s.role === 'weight').reduce((a, s) => a + s.init.size, 0),
      nodes: step.nodes,
      optimizer,
      schedule,
      lr,
      augment,
      seed,
    };
  } finally {
    await session.release();
  }
}
