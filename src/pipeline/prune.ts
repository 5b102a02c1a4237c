/**
 * The recipe behind `mobilize prune`: load a model, prune it (filter pruning with real channel
 * removal, magnitude or N:M weight masks), optionally fine-tune it on onnxruntime in K rounds
 * (prune a step further, fine-tune, repeat; masks keep pruned weights at zero; `distill` makes
 * the unpruned model the teacher), and report params, MACs, file size (and gzip size), latency
 * on onnxruntime-node and accuracy before and after. Nothing is written until every step passed.
 */
import { gzipSync } from 'fflate';
import * as ort from 'onnxruntime-node';
import type { Dataset } from '../data/dataset.js';
import type { Preprocess } from '../data/preprocess.js';
import { openDataset } from '../data/spec.js';
import { badInput, checkFailed, firstLine } from '../errors.js';
import { evaluate } from '../eval/accuracy.js';
import { measureLatency } from '../eval/latency.js';
import { modelStats } from '../eval/stats.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { assertNotInput, loadModel, type SavedModel, saveModel } from '../io/files.js';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import { checkFraction, countMacs, type FilterPruneReport, pruneFilters } from '../prune/filter.js';
import type { Criterion } from '../prune/importance.js';
import type { Scope } from '../prune/plan.js';
import {
  applyMasks,
  gradualSparsity,
  type LayerSparsity,
  type Masks,
  magnitudeMasks,
  nmMasks,
  parsePattern,
  weightSparsity,
} from '../prune/weights.js';
import type { Backend, Feeds, Session } from '../runtime/backend.js';
import { concreteDims, randomFeeds, requiredInputs } from '../runtime/feeds.js';
import { nodeBackend } from '../runtime/node.js';
import type { OrtModule } from '../runtime/ort.js';
import type { StepProgress } from '../train/trainer.js';
import { defaultLearningRate, train } from '../train/trainer.js';
import { Random } from '../util/random.js';

export type PruneMethod = 'magnitude' | 'l1-filter' | 'nm';

export interface PruneRecipe {
  input: string;
  output: string;
  method: PruneMethod;
  /** magnitude: fraction of weights zeroed; l1-filter: fraction of channels removed. */
  sparsity?: number;
  /** l1-filter: fraction of the MACs removed. */
  flops?: number;
  /** nm: N:M, such as 2:4. */
  pattern?: string;
  scope?: Scope;
  /** l1-filter: kept channel counts move in steps of this many (default 1). */
  multiple?: number;
  /** l1-filter: l1 (default), l2 or bn-scale. */
  criterion?: Criterion;
  /** Fine-tuning epochs in all (0: none). */
  finetuneEpochs?: number;
  /** Prune → fine-tune rounds, the sparsity or MAC target rising on the cubic schedule (default 1). */
  steps?: number;
  /** Data spec: fine-tuning uses its train split and accuracy its test split (fashion-mnist), or the same data. */
  data?: string;
  testData?: string;
  preprocess?: Preprocess;
  distill?: boolean;
  temperature?: number;
  alpha?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  limit?: number;
  testLimit?: number;
  threads?: number;
  /** Shapes to count MACs with (free dims default to 1 and 224). */
  inputShapes?: Record<string, Shape>;
  /** Timed runs per model for the latency comparison (0: skip), and the batch they run. */
  latencyRuns?: number;
  latencyBatch?: number;
  onPhase?: (phase: string) => void;
  onProgress?: (phase: string, done: number, total: number) => void;
  onStep?: (p: StepProgress, round: number) => void;
}

export interface ModelFigures {
  params: number;
  /** Non-zero parameters (what a sparse format would store). */
  nonZero: number;
  macs: number;
  bytes: number;
  gzipBytes: number;
  latencyMs?: number;
  accuracy?: number;
}

export interface PruneRound {
  round: number;
  /** The target of this round (fraction of weights, channels or MACs). */
  target: number;
  accuracyPruned?: number;
  accuracyFinetuned?: number;
  finetuneSeconds?: number;
}

export interface PruneRecipeReport {
  method: PruneMethod;
  input: string;
  output: SavedModel;
  before: ModelFigures;
  after: ModelFigures;
  /** Accuracy after pruning, before any fine-tuning (the first round's pruning when there are several). */
  accuracyPruned?: number;
  rounds: PruneRound[];
  data?: string;
  test?: string;
  distill: boolean;
  latencyBatch: number;
  /** l1-filter: kept channels per layer and the dependency groups (of the last round). */
  filter?: FilterPruneReport;
  /** magnitude / nm: zeros per layer. */
  layers?: LayerSparsity[];
  pattern?: { n: number; m: number };
}

function figures(model: Model, shapes: Record<string, Shape> | undefined): ModelFigures {
  const bytes = writeOnnx(model).model;
  const stats = modelStats(model);
  let nonZero = 0;
  for (const v of model.graph.initializers) {
    const t = v.initializer;
    if (!t) continue;
    if (t.dtype !== 'float32') nonZero += t.size;
    else for (const x of t.data as Float32Array) if (x !== 0) nonZero++;
  }
  return {
    params: stats.params,
    nonZero,
    macs: countMacs(model, shapes),
    bytes: bytes.byteLength,
    gzipBytes: gzipSync(bytes, { level: 9 }).byteLength,
  };
}

/** Seeded random float inputs with the batch dim set to `batch` (when the model leaves it free). */
function batchFeeds(model: Model, batch: number, seed: number): Feeds {
  const rng = new Random(seed);
  const feeds: Feeds = {};
  const bound = new Map<string, number>();
  for (const v of requiredInputs(model)) {
    const dims = concreteDims(v, bound);
    const t = v.type;
    const first = t?.kind === 'tensor' ? t.shape?.[0] : undefined;
    if (dims.length > 0 && typeof first !== 'number') dims[0] = batch;
    const n = dims.reduce((a, b) => a * b, 1);
    if (t?.kind !== 'tensor' || t.dtype !== 'float32')
      throw badInput(`input "${v.name}" is not float32; the latency comparison feeds random floats`);
    feeds[v.name] = Tensor.from(
      'float32',
      dims,
      Float32Array.from({ length: n }, () => rng.next()),
    );
  }
  return feeds;
}

function parseFlagsFor(recipe: PruneRecipe): { n: number; m: number } | undefined {
  const { method } = recipe;
  if (method !== 'magnitude' && method !== 'l1-filter' && method !== 'nm') {
    throw badInput(`--method ${String(method)}: expected magnitude, l1-filter or nm`);
  }
  checkFraction('--sparsity', recipe.sparsity);
  checkFraction('--flops', recipe.flops);
  const steps = recipe.steps ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw badInput(`--steps ${steps}: expected a whole number ≥ 1`);
  if (method === 'nm') {
    if (recipe.sparsity !== undefined || recipe.flops !== undefined)
      throw badInput('--method nm takes --pattern N:M, not --sparsity or --flops');
    if (steps !== 1) throw badInput('--method nm prunes in one step (the pattern fixes the sparsity); drop --steps');
    return parsePattern(recipe.pattern ?? '2:4');
  }
  if (recipe.pattern !== undefined) throw badInput('--pattern goes with --method nm');
  if (method === 'magnitude') {
    if (recipe.flops !== undefined) throw badInput('--flops goes with --method l1-filter (weight masks do not remove MACs)');
    if (recipe.sparsity === undefined) throw badInput('--method magnitude needs --sparsity (the fraction of weights to zero)');
  } else if ((recipe.sparsity === undefined) === (recipe.flops === undefined)) {
    throw badInput('--method l1-filter needs one of --sparsity (fraction of channels) or --flops (fraction of MACs)');
  }
  return undefined;
}

/** The pruned model must load on onnxruntime and give outputs of the original's shapes; else nothing is written. */
async function checkRuns(original: Model, pruned: Model, backend: Backend, seed: number): Promise<void> {
  const feeds = randomFeeds(original, seed);
  const shapes = async (m: Model, what: string): Promise<Map<string, string>> => {
    let session: Session | undefined;
    try {
      session = await backend.createSession(m);
      const out = await session.run(feeds);
      return new Map(Object.entries(out).map(([k, t]) => [k, t.dims.join('x')]));
    } catch (e) {
      throw checkFailed(`onnxruntime cannot run the ${what} model: ${firstLine(e)}`);
    } finally {
      await session?.release();
    }
  };
  const a = await shapes(original, 'original');
  const b = await shapes(pruned, 'pruned');
  for (const [name, dims] of a) {
    if (b.get(name) !== dims)
      throw checkFailed(`the pruned model's output "${name}" has shape ${b.get(name) ?? 'none'} instead of ${dims}; nothing was written`);
  }
}

/** An unnamed `--input-shape` (key '') names the model's single input. */
function bindShapes(shapes: Record<string, Shape> | undefined, model: Model): Record<string, Shape> | undefined {
  if (!shapes || !('' in shapes)) return shapes;
  const inputs = requiredInputs(model);
  if (inputs.length !== 1) throw badInput(`--input-shape needs an input name (name:1x3x224x224); the model has ${inputs.length} inputs`);
  const { '': dims, ...rest } = shapes;
  return { ...rest, [inputs[0].name]: dims };
}

export async function runPrune(recipe: PruneRecipe): Promise<PruneRecipeReport> {
  const pattern = parseFlagsFor(recipe);
  assertNotInput(recipe.output, [recipe.input]);
  const original = loadModel(recipe.input);
  assertValid(original, recipe.input, { registry: defaultRegistry() });
  inferShapes(original);
  const shapes = bindShapes(recipe.inputShapes, original);
  const epochs = recipe.finetuneEpochs ?? 0;
  if (!Number.isInteger(epochs) || epochs < 0) throw badInput(`--finetune-epochs ${epochs}: expected a whole number ≥ 0`);
  if (recipe.distill && epochs === 0) throw badInput('--distill needs fine-tuning: give --finetune-epochs N');
  const steps = recipe.steps ?? 1;
  if (steps > 1 && epochs === 0) throw badInput('--steps K prunes and fine-tunes in K rounds: give --finetune-epochs N as well');
  const seed = recipe.seed ?? 0;
  const input = requiredInputs(original)[0];
  const dataSpec = recipe.data ?? (epochs > 0 ? 'fashion-mnist' : undefined);
  const fmnist = dataSpec !== undefined && /^fashion-mnist(:train)?$/.test(dataSpec);
  const trainData: Dataset | undefined =
    dataSpec && epochs > 0 ? openDataset(dataSpec, { defaultSplit: 'train', input, ...recipe.preprocess }) : undefined;
  const testSpec = recipe.testData ?? (fmnist ? 'fashion-mnist:test' : dataSpec);
  const test = testSpec ? openDataset(testSpec, { defaultSplit: 'test', input, ...recipe.preprocess }) : undefined;
  const backend = nodeBackend();
  const accuracy = async (m: Model, phase: string): Promise<number | undefined> => {
    if (!test) return undefined;
    recipe.onPhase?.(phase);
    const r = await evaluate(m, test, backend, {
      limit: recipe.testLimit,
      threads: recipe.threads,
      onProgress: (d, t) => recipe.onProgress?.(phase, d, t),
    });
    return r.top1;
  };

  const before = figures(original, shapes);
  before.accuracy = await accuracy(original, 'accuracy before');
  const teacher = recipe.distill ? readOnnx(writeOnnx(original).model) : undefined;
  let model = readOnnx(writeOnnx(original).model);
  const rounds: PruneRound[] = [];
  let filter: FilterPruneReport | undefined;
  let masks: Masks | undefined;
  const macs0 = before.macs;
  let accuracyPruned: number | undefined;
  for (let k = 1; k <= steps; k++) {
    const round: PruneRound = { round: k, target: 0 };
    recipe.onPhase?.(steps > 1 ? `pruning (round ${k}/${steps})` : 'pruning');
    if (recipe.method === 'l1-filter') {
      if (recipe.flops !== undefined) {
        round.target = gradualSparsity(recipe.flops, k, steps);
        // This round's MAC target, as a fraction of the model as it is now (fine-tuning keeps its shape).
        const now = filter?.macsAfter ?? macs0;
        const rel = 1 - ((1 - round.target) * macs0) / now;
        if (rel > 0)
          filter = pruneFilters(model, {
            flops: Math.min(rel, 0.999999),
            criterion: recipe.criterion,
            scope: recipe.scope,
            multiple: recipe.multiple,
            inputShapes: shapes,
          });
      } else {
        const total = recipe.sparsity as number;
        round.target = gradualSparsity(total, k, steps);
        const prev = gradualSparsity(total, k - 1, steps);
        const rel = 1 - (1 - round.target) / (1 - prev);
        filter = pruneFilters(model, {
          ratio: rel,
          criterion: recipe.criterion,
          scope: recipe.scope,
          multiple: recipe.multiple,
          inputShapes: shapes,
        });
      }
    } else if (recipe.method === 'magnitude') {
      round.target = gradualSparsity(recipe.sparsity as number, k, steps);
      masks = magnitudeMasks(model, { sparsity: round.target, scope: recipe.scope });
      applyMasks(model, masks);
    } else {
      const { n, m } = pattern as { n: number; m: number };
      round.target = 1 - n / m;
      masks = nmMasks(model, n, m);
      applyMasks(model, masks);
    }
    assertValid(model, 'pruned model', { registry: defaultRegistry() });
    round.accuracyPruned = await accuracy(model, 'accuracy after pruning');
    if (k === 1) accuracyPruned = round.accuracyPruned;
    if (epochs > 0 && trainData) {
      recipe.onPhase?.(steps > 1 ? `fine-tuning (round ${k}/${steps})` : 'fine-tuning');
      const even = epochs % steps === 0;
      const t0 = performance.now();
      const result = await train({
        ort: ort as unknown as OrtModule,
        model,
        data: trainData,
        epochs: even ? epochs / steps : 1,
        limit: even ? recipe.limit : Math.max(1, Math.round(((recipe.limit ?? trainData.size) * epochs) / steps)),
        batchSize: recipe.batchSize,
        lr: recipe.lr ?? defaultLearningRate('adamw', true),
        distill: teacher ? { teacher, temperature: recipe.temperature ?? 4, alpha: recipe.alpha ?? 0.7 } : undefined,
        masks,
        seed: seed + k - 1,
        threads: recipe.threads,
        onStep: (p) => recipe.onStep?.(p, k),
      });
      model = result.model;
      inferShapes(model);
      round.finetuneSeconds = (performance.now() - t0) / 1000;
      round.accuracyFinetuned = await accuracy(model, 'accuracy after fine-tuning');
    }
    rounds.push(round);
  }
  assertValid(model, 'pruned model', { registry: defaultRegistry() });
  const after = figures(model, shapes);
  after.accuracy = rounds[rounds.length - 1].accuracyFinetuned ?? rounds[rounds.length - 1].accuracyPruned;
  const latencyBatch = recipe.latencyBatch ?? 1;
  const runs = recipe.latencyRuns ?? 50;
  if (runs > 0) {
    recipe.onPhase?.('latency');
    const feeds = batchFeeds(original, latencyBatch, seed);
    const [a, b] = await measureLatency(
      [
        { name: 'before', model: original, feeds },
        { name: 'after', model, feeds },
      ],
      backend,
      { runs, threads: recipe.threads, onProgress: (d, t) => recipe.onProgress?.('latency', d, t) },
    );
    before.latencyMs = a.medianMs;
    after.latencyMs = b.medianMs;
  }
  await checkRuns(original, model, backend, seed);
  const output = saveModel(model, recipe.output, { protect: [recipe.input] });
  return {
    method: recipe.method,
    input: recipe.input,
    output,
    before,
    after,
    accuracyPruned,
    rounds,
    data: trainData?.name,
    test: test?.name,
    distill: !!teacher,
    latencyBatch,
    filter,
    layers: recipe.method === 'l1-filter' ? undefined : weightSparsity(model),
    pattern,
  };
}
