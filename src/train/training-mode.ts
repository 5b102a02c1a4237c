/**
 * Training-mode switches for the ops that behave differently while training:
 * BatchNormalization (batch statistics, running statistics as outputs) and Dropout (random
 * dropping). Browser-safe.
 */
import { badInput } from '../errors.js';
import type { Model, Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { inferShapes } from '../ops/infer.js';

export interface TrainingModeReport {
  /** BatchNormalization nodes switched, with their running-statistics outputs (mean, variance). */
  batchNorms: Array<{ node: Node; runningMean: Value; runningVar: Value }>;
  /** Dropout nodes switched. */
  dropouts: Node[];
}

/**
 * Puts every BatchNormalization of the main graph in training mode (training_mode = 1: it
 * normalizes with the batch's statistics and outputs the updated running mean and variance,
 * named `<node>.running_mean` and `<node>.running_var`) and every Dropout in dropping mode (its
 * training_mode input a true constant). Needs opset 14 (upgrade with `upgradeOpset(model, 17)`).
 * Nodes already in training mode are left as they are (and reported).
 */
export function setTrainingMode(model: Model): TrainingModeReport {
  const opset = model.opset('') ?? 0;
  const g = model.graph;
  const report: TrainingModeReport = { batchNorms: [], dropouts: [] };
  let on: Value | undefined;
  for (const node of g.nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    if (node.opType === 'BatchNormalization') {
      if (opset < 14)
        throw badInput(`${node.describe()}: training mode needs opset 14 or later (upgrade the model with upgradeOpset(model, 17))`);
      node.attrs.set('training_mode', { type: 'int', value: 1 });
      const base = node.name || node.output().name;
      const outs: Value[] = [];
      for (const [i, suffix] of [
        [1, 'running_mean'],
        [2, 'running_var'],
      ] as const) {
        let v = node.outputs[i];
        if (!v) {
          v = g.createValue(`${base}.${suffix}`);
          v.producer = node;
          while (node.outputs.length < i) node.outputs.push(null);
          node.outputs[i] = v;
        }
        outs.push(v);
      }
      report.batchNorms.push({ node, runningMean: outs[0], runningVar: outs[1] });
    } else if (node.opType === 'Dropout') {
      if (opset < 12) throw badInput(`${node.describe()}: a training-mode input needs opset 12 or later`);
      on ??= g.addInitializer('dropout_training', Tensor.from('bool', [], [1]));
      node.setInput(2, on);
      report.dropouts.push(node);
    }
  }
  inferShapes(model);
  return report;
}
