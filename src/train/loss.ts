/** Losses added to a model for training. Browser-safe. */
import { badInput } from '../errors.js';
import type { Model, Value } from '../ir/graph.js';
import { inferShapes } from '../ops/infer.js';

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
  const x = typeof logits === 'string' ? [...g.nodes.flatMap((n) => n.outputs), ...g.inputs].find((v) => v?.name === logits) : logits;
  if (!x) throw badInput(`the model has no value "${logits}" to take the loss of`);
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
