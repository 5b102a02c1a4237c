/** Losses added to a model for training. Browser-safe. */
import { badInput } from '../errors.js';
import type { Model, Value } from '../ir/graph.js';
import { inferShapes } from '../ops/infer.js';
import { Emitter } from './emit.js';

export interface CrossEntropyOptions {
  /** Name of the int64 class-index input the loss adds (default `labels`). */
  labels?: string;
  /** Averaged over the batch (default) or summed. */
  reduction?: 'mean' | 'sum';
  /** Name of the loss output (default `loss`). */
  name?: string;
}

/**
 * Adds softmax cross-entropy of `logits` ([N, C] or [N, C, D…], by Value or name) against a new
 * int64 graph input of class indices ([N] or [N, D…]), as one SoftmaxCrossEntropyLoss node whose
 * scalar output becomes a graph output. Returns the loss and the labels input.
 */
export function addCrossEntropyLoss(
  model: Model,
  logits: Value | string,
  options: CrossEntropyOptions = {},
): { loss: Value; labels: Value } {
  const g = model.graph;
  const x = find(model, logits, 'loss');
  inferShapes(model);
  const t = x.type;
  if (t?.kind !== 'tensor' || !t.shape || t.shape.length < 2)
    throw badInput(`logits ${x.name} must be [N, C, …], not ${JSON.stringify(t)}`);
  const labels = g.addInput(options.labels ?? 'labels', { kind: 'tensor', dtype: 'int64', shape: [t.shape[0], ...t.shape.slice(2)] });
  const node = g.addNode('SoftmaxCrossEntropyLoss', [x, labels], [options.name ?? 'loss'], {
    name: 'loss',
    attrs: [['reduction', { type: 'string', value: options.reduction ?? 'mean' }]],
  });
  const loss = node.output();
  g.addOutput(loss);
  inferShapes(model);
  return { loss, labels };
}

function find(model: Model, name: Value | string, what: string): Value {
  if (typeof name !== 'string') return name;
  const g = model.graph;
  const v = [...g.nodes.flatMap((n) => n.outputs), ...g.inputs, ...g.initializers].find((x) => x?.name === name);
  if (!v) throw badInput(`the model has no value "${name}" to take the ${what} of`);
  return v;
}

export interface MseOptions {
  /** Name of the float targets input the loss adds, shaped like the output (default `targets`). */
  targets?: string;
  /** Name of the loss output (default `loss`). */
  name?: string;
}

/**
 * Adds the mean squared error of `output` against a new float input of targets of the same
 * shape: mean over all elements of (y − t)². Returns the loss and the targets input.
 */
export function addMseLoss(model: Model, output: Value | string, options: MseOptions = {}): { loss: Value; targets: Value } {
  const g = model.graph;
  const y = find(model, output, 'loss');
  inferShapes(model);
  const t = y.type;
  if (t?.kind !== 'tensor' || !t.dtype) throw badInput(`output ${y.name} must be a tensor of known type for an MSE loss`);
  const targets = g.addInput(options.targets ?? 'targets', { kind: 'tensor', dtype: t.dtype, shape: t.shape ? [...t.shape] : undefined });
  const e = new Emitter(g, 'loss');
  const d = e.op('Sub', [y, targets]);
  const loss = e.output(e.op('ReduceMean', [e.op('Mul', [d, d])], { keepdims: 0 }), options.name ?? 'loss');
  inferShapes(model);
  return { loss, targets };
}

export interface DistillationOptions {
  /** Softmax temperature T (> 0). */
  temperature: number;
  /** Weight α of the distillation term, in [0, 1]; the cross-entropy with the labels gets 1 − α. */
  alpha: number;
  /** Name of the int64 labels input (default `labels`). */
  labels?: string;
  /** Name of the loss output (default `loss`); the two parts are also outputs, `kd_loss` and `ce_loss`. */
  name?: string;
}

/**
 * Knowledge distillation (Hinton et al., 2015): the teacher's soft labels
 * q_i = exp(t_i/T) / Σ_j exp(t_j/T), the student's softened log-probabilities
 * log p_i = s_i/T − log Σ_j exp(s_j/T), and KD = −Σ_i q_i log p_i averaged over the batch. The
 * loss is α·T²·KD + (1 − α)·CE(s, labels): the T² keeps the soft term's gradients on the scale of
 * the hard one's as T changes. The teacher's logits carry no gradient (they do not depend on the
 * student's weights). Adds the labels input; returns the loss and its parts.
 */
export function addDistillationLoss(
  model: Model,
  studentLogits: Value | string,
  teacherLogits: Value | string,
  options: DistillationOptions,
): { loss: Value; kd: Value; ce: Value; labels: Value } {
  const { temperature: T, alpha } = options;
  if (!(T > 0) || !Number.isFinite(T)) throw badInput(`temperature ${T}: expected a number above 0`);
  if (!(alpha >= 0 && alpha <= 1)) throw badInput(`alpha ${alpha}: expected a number in [0, 1]`);
  const s = find(model, studentLogits, 'loss');
  const t = find(model, teacherLogits, 'loss');
  const { loss: ce, labels } = addCrossEntropyLoss(model, s, { labels: options.labels, name: 'ce_loss' });
  const g = model.graph;
  const e = new Emitter(g, 'distill');
  const invT = e.scalar(1 / T);
  const logP = e.op('LogSoftmax', [e.op('Mul', [s, invT])], { axis: 1 });
  const q = e.op('Softmax', [e.op('Mul', [t, invT])], { axis: 1 });
  const perSample = e.op('ReduceSum', [e.op('Mul', [q, logP]), e.ints([1])], { keepdims: 0 });
  const kd = e.output(e.op('Neg', [e.op('ReduceMean', [perSample], { keepdims: 0 })]), 'kd_loss');
  const total = e.op('Add', [e.op('Mul', [kd, e.scalar(alpha * T * T)]), e.op('Mul', [ce, e.scalar(1 - alpha)])]);
  const loss = e.output(total, options.name ?? 'loss');
  inferShapes(model);
  return { loss, kd, ce, labels };
}
