/**
 * The training step as one ONNX graph: the forward pass in training mode, the loss, the backward
 * pass (buildGradients) and the optimizer update, built once and run by onnxruntime (node or web)
 * once per batch.
 *
 * Everything that changes from step to step is a graph input whose next value is a graph output
 * — the weights (`conv1.weight` → `conv1.weight.next`), BatchNormalization's running statistics,
 * the optimizer state — so the loop only feeds the outputs of one run into the next. Weights must
 * be plain inputs: onnxruntime's JS API silently ignores a feed for an input that also has an
 * initializer. The learning rate is an input too (`lr`), so schedules live in the loop.
 *
 * Alongside, two graphs over the same names: `inference` (the model as given, upgraded to opset
 * ≥ 14 when older, BatchNormalization in inference mode) that `exportModel` fills with learned
 * values, and `evaluation` (the inference graph with the trained values as inputs) that the loop
 * runs on test data without rebuilding anything.
 *
 * Browser-safe.
 */
import { badInput } from '../errors.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { isFloat } from '../ir/dtype.js';
import type { Graph, Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { formatType } from '../ir/types.js';
import { upgradeOpset } from '../ir/upgrade/index.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import { optimize } from '../passes/pipeline.js';
import { buildGradients } from './autodiff.js';
import { addCrossEntropyLoss, addDistillationLoss, addMseLoss } from './loss.js';
import { addOptimizer, type OptimizerConfig, resolveOptimizer, type StateSlot } from './optimizer.js';
import { setTrainingMode } from './training-mode.js';

/** Below this opset the model is upgraded to TRAIN_OPSET first (training-mode BatchNormalization needs 14). */
const MIN_TRAIN_OPSET = 14;
const TRAIN_OPSET = 17;

export type LossKind = 'cross-entropy' | 'mse';

export interface DistillConfig {
  /** The teacher: an inference model with the same input as the student and the same number of classes. */
  teacher: Model;
  temperature: number;
  alpha: number;
  /** The teacher's output holding its logits (default its first). */
  output?: string;
}

export interface TrainingStepOptions {
  optimizer: OptimizerConfig;
  /** Default cross-entropy; mse compares the logits with one-hot targets. Ignored when distilling. */
  loss?: LossKind;
  distill?: DistillConfig;
  /** Initializers kept fixed (exact names, or a prefix ending in `*`). */
  freeze?: readonly string[];
  /** The output holding the logits (default the model's first). */
  output?: string;
  /**
   * Sparsity masks (initializer name → 0/1 values of the same size, e.g. from pruning): masked
   * weights start at zero and stay exactly zero through every update (the training graph
   * multiplies each updated weight by its mask), so they are zero in the exported model too.
   */
  masks?: ReadonlyMap<string, Float32Array>;
  /** Runs mobilize's graph optimizer over the training graph (default true). */
  optimizeGraph?: boolean;
}

export interface TrainingStep {
  /** The training graph. */
  model: Model;
  /** The inference model the trained values go back into (BatchNormalization in inference mode). */
  inference: Model;
  /** The inference graph with every trained value (weights, running statistics) as a plain input. */
  evaluation: Model;
  /** Graph input names: the data, the labels (int64 class indices) or MSE targets, the learning rate. */
  input: string;
  labels: string;
  lr: string;
  /** Graph output names: the loss, the logits, and the loss's parts when there are several (`kd_loss`, `ce_loss`). */
  loss: string;
  logits: string;
  lossParts: string[];
  lossKind: LossKind | 'distill';
  /** Trained weights, and initializers kept fixed because they were frozen or carry no gradient. */
  weights: string[];
  frozen: string[];
  /** Everything fed back each step, with its initial value. */
  state: StateSlot[];
  /** Number of classes (the logits' second dim), when known. */
  classes?: number;
  /** The input's dims after the batch dim, and its fixed batch size when it has one. */
  sampleDims: Array<number | string | null>;
  fixedBatch?: number;
  /** Node counts: the inference model's, and the training graph's. */
  nodes: { inference: number; training: number };
  /** The masked initializers, with how many of their values the mask zeroes. */
  masked: Array<{ name: string; zeros: number; size: number }>;
}

function clone(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

function tensorShape(v: Value): Array<number | string | null> | undefined {
  const t = v.type;
  return t?.kind === 'tensor' && t.shape ? [...t.shape] : undefined;
}

function dtypeOf(v: Value): string | undefined {
  const t = v.type;
  return t?.kind === 'tensor' ? t.dtype : undefined;
}

/** Turns initializer `v` into a plain graph input (onnxruntime's JS API ignores feeds for inputs with initializers). */
function asInput(g: Graph, v: Value): void {
  v.initializer = undefined;
  g.initializers.splice(g.initializers.indexOf(v), 1);
  g.inputs.push(v);
}

/** Whether `name` matches one of the --freeze patterns (exact, or a prefix ending in `*`). */
function frozenBy(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
}

/** The inference model to train: a copy at opset ≥ 14 with one data input and a logits output. */
function prepareInference(model: Model, output: string | undefined): { inference: Model; input: Value; logits: Value } {
  const inference = clone(model);
  const opset = inference.opset('');
  if (opset === undefined) throw badInput('the model imports no default ONNX opset; mobilize trains standard ONNX models');
  if (opset < MIN_TRAIN_OPSET) upgradeOpset(inference, TRAIN_OPSET);
  const g = inference.graph;
  for (const n of g.allNodes()) {
    if (n.subgraphs().length > 0) throw badInput(`${n.describe()} holds a subgraph; training models with control flow is not supported`);
  }
  const report = inferShapes(inference);
  const problem = report.problems[0];
  if (problem) throw badInput(`cannot train the model: shape inference failed at ${problem.node}: ${problem.message}`);
  const inputs = g.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) {
    throw badInput(`training feeds one input; the model has ${inputs.length} (${inputs.map((v) => v.name).join(', ') || 'none'})`);
  }
  const input = inputs[0];
  if (dtypeOf(input) !== 'float32')
    throw badInput(`the model's input "${input.name}" is ${formatType(input.type)}; training feeds float32 data`);
  // Inputs with initializers are constants to onnxruntime's JS API: make them plain initializers.
  for (const v of g.inputs.filter((x) => x.initializer)) g.inputs.splice(g.inputs.indexOf(v), 1);
  const logits = output ? g.outputs.find((v) => v.name === output) : g.outputs[0];
  if (!logits) throw badInput(`the model has no output "${output}"; its outputs are ${g.outputs.map((v) => v.name).join(', ')}`);
  const shape = tensorShape(logits);
  if (shape?.length !== 2 || dtypeOf(logits) !== 'float32') {
    throw badInput(`the output "${logits.name}" is ${formatType(logits.type)}; training needs float32 scores of shape [N, classes]`);
  }
  return { inference, input, logits };
}

/** Copies the teacher's nodes and initializers into `model` under `teacher/` names, reading the student's input. */
function mergeTeacher(model: Model, teacher: Model, input: Value, outputName: string | undefined): Value {
  const t = clone(teacher);
  const tOpset = t.opset('') ?? 0;
  const sOpset = model.opset('') ?? 0;
  if (tOpset < sOpset) upgradeOpset(t, sOpset);
  else if (tOpset > sOpset) upgradeOpset(model, tOpset);
  for (const [domain, version] of t.opsetImports) if (!model.opsetImports.has(domain)) model.opsetImports.set(domain, version);
  const tg = t.graph;
  const tInputs = tg.inputs.filter((v) => !v.initializer);
  if (tInputs.length !== 1) throw badInput(`the teacher must have one input; it has ${tInputs.length}`);
  const tIn = tInputs[0];
  const want = tensorShape(input)?.slice(1);
  const have = tensorShape(tIn)?.slice(1);
  if (
    want &&
    have &&
    (want.length !== have.length || want.some((d, i) => typeof d === 'number' && typeof have[i] === 'number' && d !== have[i]))
  ) {
    throw badInput(`the teacher's input "${tIn.name}" is ${formatType(tIn.type)} but the student's is ${formatType(input.type)}`);
  }
  const out = outputName ? tg.outputs.find((v) => v.name === outputName) : tg.outputs[0];
  if (!out) throw badInput(`the teacher has no output "${outputName}"`);
  const g = model.graph;
  const map = new Map<Value, Value>([[tIn, input]]);
  for (const v of tg.initializers) map.set(v, g.addInitializer(`teacher/${v.name}`, v.initializer as Tensor, v.type));
  const cycle = tg.topoSort();
  if (cycle) throw badInput(`the teacher graph has a cycle through ${cycle[0].describe()}`);
  for (const n of tg.nodes) {
    if (n.subgraphs().length > 0) throw badInput(`teacher ${n.describe()} holds a subgraph; not supported`);
    const inputs = n.inputs.map((v) => {
      if (!v) return null;
      const m = map.get(v);
      if (!m) throw badInput(`teacher ${n.describe()} reads ${v.name}, which no node or initializer gives`);
      return m;
    });
    const added = g.addNode(
      n.opType,
      inputs,
      n.outputs.map((o) => (o ? g.freshName(`teacher/${o.name}`) : '')),
      { domain: n.domain, name: `teacher/${n.name || n.opType}`, attrs: n.attrs },
    );
    n.outputs.forEach((o, i) => {
      const v = added.outputs[i];
      if (o && v) {
        v.type = o.type;
        map.set(o, v);
      }
    });
  }
  const logits = map.get(out);
  if (!logits) throw badInput(`the teacher's output ${out.name} is not computed by its nodes`);
  return logits;
}

/**
 * Builds the training step for an inference model (which is not modified). The model must have
 * one float32 input and float32 logits [N, classes]; models below opset 14 are upgraded to 17.
 * Trained weights are the float32 initializers with more than one element that the loss depends
 * on, except BatchNormalization's running statistics (updated by the forward pass instead) and
 * the frozen ones. Throws a one-line MobilizeError for a model it cannot train (an op with no
 * gradient rule names the node).
 */
export function buildTrainingStep(source: Model, options: TrainingStepOptions): TrainingStep {
  resolveOptimizer(options.optimizer);
  const { inference, input: infInput, logits: infLogits } = prepareInference(source, options.output);
  const masked = applyMasks(inference, options.masks);
  const model = clone(inference);
  const g = model.graph;
  const input = g.inputs.find((v) => v.name === infInput.name) as Value;
  const logits = g.outputs.find((v) => v.name === infLogits.name) as Value;
  const freeze = options.freeze ?? [];
  for (const p of freeze) {
    const hit = g.initializers.some((v) => frozenBy([p], v.name));
    if (!hit) throw badInput(`--freeze ${p}: the model has no initializer of that name`);
  }

  const bn = setTrainingMode(model);
  const state: StateSlot[] = [];
  const runningStats = new Set<Value>();
  const runningNext: Array<[Value, Value]> = [];
  for (const { node, runningMean, runningVar } of bn.batchNorms) {
    for (const [i, next] of [
      [3, runningMean],
      [4, runningVar],
    ] as const) {
      const v = node.inputs[i];
      if (!v?.initializer) throw badInput(`${node.describe()}: its running statistics must be initializers to be trained`);
      if (runningStats.has(v))
        throw badInput(`${node.describe()}: its running statistic ${v.name} is shared with another BatchNormalization`);
      runningStats.add(v);
      runningNext.push([v, next]);
    }
  }

  const candidates = g.initializers.filter(
    (v) => !runningStats.has(v) && dtypeOf(v) === 'float32' && (v.initializer?.size ?? 0) > 1 && !frozenBy(freeze, v.name),
  );
  const frozen = g.initializers.filter((v) => {
    const d = v.initializer?.dtype;
    return d !== undefined && isFloat(d) && !runningStats.has(v) && !candidates.includes(v);
  });

  // The loss.
  const kind = options.distill ? 'distill' : (options.loss ?? 'cross-entropy');
  let loss: Value;
  let labels: Value;
  const lossParts: string[] = [];
  if (options.distill) {
    const d = options.distill;
    const teacherLogits = mergeTeacher(model, d.teacher, input, d.output);
    const tShape = tensorShape(teacherLogits);
    const sShape = tensorShape(logits);
    if (tShape?.length !== 2 || (typeof tShape[1] === 'number' && typeof sShape?.[1] === 'number' && tShape[1] !== sShape[1])) {
      throw badInput(`the teacher's output is ${formatType(teacherLogits.type)} but the student's logits are ${formatType(logits.type)}`);
    }
    const r = addDistillationLoss(model, logits, teacherLogits, { temperature: d.temperature, alpha: d.alpha });
    loss = r.loss;
    labels = r.labels;
    lossParts.push(r.kd.name, r.ce.name);
  } else if (kind === 'mse') {
    const r = addMseLoss(model, logits);
    loss = r.loss;
    labels = r.targets;
  } else if (kind === 'cross-entropy') {
    const r = addCrossEntropyLoss(model, logits);
    loss = r.loss;
    labels = r.labels;
  } else {
    throw badInput(`loss ${String(kind)}: expected cross-entropy or mse`);
  }

  // The weights become plain graph inputs; so do the running statistics.
  const initOf = new Map<Value, Tensor>();
  for (const v of [...candidates, ...runningStats]) {
    initOf.set(v, v.initializer as Tensor);
    asInput(g, v);
  }
  const grads = buildGradients(model, loss, candidates, { addOutputs: false });
  const unreached = new Set(grads.unreached);
  const trained: Array<{ weight: Value; grad: Value }> = [];
  candidates.forEach((w, i) => {
    if (unreached.has(w)) {
      // No gradient reaches it (a constant on a path the loss does not differentiate): keep it fixed.
      g.inputs.splice(g.inputs.indexOf(w), 1);
      g.makeInitializer(w, initOf.get(w) as Tensor);
      frozen.push(w);
    } else {
      trained.push({ weight: w, grad: grads.gradients[i] });
    }
  });
  if (trained.length === 0) throw badInput('nothing to train: no weight of the model reaches the loss (all frozen or constant)');

  const lr = g.addInput('lr', { kind: 'tensor', dtype: 'float32', shape: [] });
  const opt = addOptimizer(g, trained, lr, options.optimizer);
  // Masked weights: Where(mask, updated, 0) after the update, so a zeroed value stays +0 exactly.
  trained.forEach(({ weight }, i) => {
    const mask = options.masks?.get(weight.name);
    if (!mask) return;
    const keep = g.addInitializer(`${weight.name}.mask`, Tensor.from('bool', [...(initOf.get(weight) as Tensor).dims], mask));
    const zero = g.addInitializer(`${weight.name}.mask_zero`, Tensor.from('float32', [], [0]));
    opt.updated[i] = g.addNode('Where', [keep, opt.updated[i], zero], 1, { name: `mask/${weight.name}` }).output();
  });
  const nextName = (v: Value): string => `${v.name}.next`;
  const expose = (v: Value, name: string): string => {
    g.renameValue(v, g.hasName(name) ? g.freshName(name) : name);
    g.addOutput(v);
    return v.name;
  };
  trained.forEach(({ weight }, i) => {
    state.push({ name: weight.name, next: expose(opt.updated[i], nextName(weight)), init: initOf.get(weight) as Tensor, role: 'weight' });
  });
  for (const [v, next] of runningNext) {
    state.push({ name: v.name, next: expose(next, nextName(v)), init: initOf.get(v) as Tensor, role: 'running-stat' });
  }
  for (const s of opt.state) state.push({ name: s.input.name, next: expose(s.next, nextName(s.input)), init: s.init, role: 'optimizer' });

  // Outputs the loop reads: the loss (and its parts), the logits, the next state. Others go.
  const keep = new Set([loss.name, logits.name, ...lossParts, ...state.map((s) => s.next)]);
  g.outputs.splice(0, g.outputs.length, ...g.outputs.filter((v) => keep.has(v.name)));
  if (options.optimizeGraph ?? true) optimize(model);
  g.removeUnusedInitializers();
  inferShapes(model);
  assertValid(model, 'training graph', { registry: defaultRegistry() });

  // The evaluation graph: the inference model with the trained values as plain inputs.
  const evaluation = clone(inference);
  const eg = evaluation.graph;
  const trainedNames = new Set(state.filter((s) => s.role !== 'optimizer').map((s) => s.name));
  for (const v of [...eg.initializers]) if (trainedNames.has(v.name)) asInput(eg, v);

  const inShape = tensorShape(input) ?? [];
  const classes = tensorShape(logits)?.[1];
  return {
    model,
    inference,
    evaluation,
    input: input.name,
    labels: labels.name,
    lr: lr.name,
    loss: loss.name,
    logits: logits.name,
    lossParts,
    lossKind: kind,
    weights: trained.map((t) => t.weight.name),
    frozen: frozen.map((v) => v.name),
    state,
    classes: typeof classes === 'number' ? classes : undefined,
    sampleDims: inShape.slice(1),
    fixedBatch: typeof inShape[0] === 'number' ? inShape[0] : undefined,
    nodes: { inference: inference.graph.nodes.length, training: g.nodes.length },
    masked,
  };
}

/**
 * Zeroes the masked values of `model`'s initializers in place (new tensors; the source model's
 * are not touched). Refuses a mask naming no float32 initializer, of another size, or holding
 * anything but 0 and 1.
 */
function applyMasks(model: Model, masks: ReadonlyMap<string, Float32Array> | undefined): TrainingStep['masked'] {
  const out: TrainingStep['masked'] = [];
  if (!masks) return out;
  const g = model.graph;
  for (const [name, mask] of masks) {
    const v = g.initializers.find((x) => x.name === name);
    const t = v?.initializer;
    if (!v || !t || t.dtype !== 'float32') throw badInput(`mask for "${name}": the model has no float32 initializer of that name`);
    if (mask.length !== t.size) throw badInput(`mask for "${name}" has ${mask.length} values; the initializer has ${t.size}`);
    const data = Float32Array.from(t.data as Float32Array);
    let zeros = 0;
    for (let i = 0; i < mask.length; i++) {
      const m = mask[i];
      if (m !== 0 && m !== 1) throw badInput(`mask for "${name}" holds ${m} at ${i}; a mask holds 0 (pruned) and 1 (kept) only`);
      if (m === 0) {
        data[i] = 0;
        zeros++;
      }
    }
    v.initializer = Tensor.from('float32', [...t.dims], data);
    out.push({ name, zeros, size: t.size });
  }
  return out;
}

/**
 * The inference model with learned values: a copy of `step.inference` whose weights and running
 * statistics are replaced by `values` (by name; typically the loop's current state).
 */
export function exportModel(step: TrainingStep, values: ReadonlyMap<string, Tensor>): Model {
  const out = clone(step.inference);
  for (const v of out.graph.initializers) {
    const t = values.get(v.name);
    if (!t) continue;
    if (
      t.dtype !== v.initializer?.dtype ||
      t.dims.length !== v.initializer.dims.length ||
      t.dims.some((d, i) => d !== v.initializer?.dims[i])
    ) {
      throw new Error(`trained value ${v.name} is ${t.dtype}[${t.dims}], not ${v.initializer?.dtype}[${v.initializer?.dims}]`);
    }
    v.initializer = t;
  }
  return out;
}
