/** `inspect`: what a model is — format, versions, inputs and outputs, size and cost figures. */
import { type ModelStats, modelStats } from '../eval/stats.js';
import type { Model, Value } from '../ir/graph.js';
import type { Dim, Shape } from '../ir/types.js';
import { type InferProblem, inferShapes } from '../ops/infer.js';

export interface ValueReport {
  name: string;
  /** Element type, or the container kind for sequence/map/optional values. */
  dtype: string | null;
  /** Dims (numbers, symbols, or null for unknown); null when the rank is unknown. */
  shape: Dim[] | null;
}

export interface InspectReport extends Omit<ModelStats, 'uncounted' | 'assumed'> {
  format: string;
  irVersion: number;
  opsets: Record<string, number>;
  producer: { name: string | null; version: string | null };
  inputs: ValueReport[];
  outputs: ValueReport[];
  /** Symbols counted as 1 for MACs. */
  macsAssume: string[];
  /** Nodes whose MACs could not be counted because a shape is unknown. */
  macsUncounted: number;
  functions: number;
  metadata: Record<string, string>;
  inference: { unknownOps: Record<string, number>; problems: InferProblem[] };
}

function valueReport(v: Value): ValueReport {
  const t = v.type;
  if (!t) return { name: v.name, dtype: null, shape: null };
  if (t.kind !== 'tensor' && t.kind !== 'sparse_tensor') return { name: v.name, dtype: t.kind, shape: null };
  return { name: v.name, dtype: t.dtype ?? null, shape: t.shape ? [...t.shape] : null };
}

/** Infers shapes (fixing the given input shapes first) and reports. Mutates the model's value types. */
export function inspectModel(model: Model, options: { format?: string; inputShapes?: Record<string, Shape> } = {}): InspectReport {
  const inference = inferShapes(model, { inputShapes: options.inputShapes });
  const stats = modelStats(model);
  return {
    format: options.format ?? 'onnx',
    irVersion: model.irVersion,
    opsets: Object.fromEntries([...model.opsetImports].map(([d, v]) => [d || 'ai.onnx', v])),
    producer: { name: model.producerName ?? null, version: model.producerVersion ?? null },
    inputs: model.graph.inputs.filter((v) => !v.initializer).map(valueReport),
    outputs: model.graph.outputs.map(valueReport),
    nodes: stats.nodes,
    ops: stats.ops,
    params: stats.params,
    weightBytes: stats.weightBytes,
    macs: stats.macs,
    macsAssume: stats.assumed,
    macsUncounted: stats.uncounted.length,
    functions: model.functions.length,
    metadata: Object.fromEntries(model.metadata ?? []),
    inference: { unknownOps: Object.fromEntries(inference.unknownOps), problems: inference.problems },
  };
}
