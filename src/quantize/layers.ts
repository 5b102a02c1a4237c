/**
 * Layer by layer: where does a QDQ model part from its float original? Each activation
 * DequantizeLinear of the QDQ model stands for a float tensor: the one whose name its output
 * carries (qdq.ts names it so where a ReLU was absorbed), else the QuantizeLinear's input.
 * Both models expose the matched tensors as outputs and run over the same data; the SQNR of
 * every pair, worst first, points at the layer that loses the signal.
 */
import type { Dataset } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { compareOnData, type TensorAgreement } from '../eval/agreement.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model, Value } from '../ir/graph.js';
import type { Backend } from '../runtime/backend.js';
import { prepareForQuantization } from './static.js';

export interface LayerMatch {
  /** The float model's tensor. */
  float: string;
  /** The QDQ model's DequantizeLinear output standing for it. */
  quantized: string;
  /** Op type producing the float tensor ('input' for a graph input). */
  op: string;
  /** Position of the producer in the float model's node order. */
  index: number;
}

export function isQdqModel(m: Model): boolean {
  return m.graph.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
}

/** Pairs the float model's tensors with the QDQ model's activation DequantizeLinear outputs. */
export function matchLayers(float: Model, qdq: Model): LayerMatch[] {
  const floatValues = new Map<string, { op: string; index: number }>();
  for (const v of float.graph.inputs) if (!v.initializer) floatValues.set(v.name, { op: 'input', index: -1 });
  float.graph.nodes.forEach((n, i) => {
    for (const o of n.outputs) if (o) floatValues.set(o.name, { op: n.opType, index: i });
  });
  const matches: LayerMatch[] = [];
  const taken = new Set<string>();
  for (const dq of qdq.graph.nodes) {
    if (dq.opType !== 'DequantizeLinear') continue;
    const q = dq.input(0)?.producer;
    if (q?.opType !== 'QuantizeLinear') continue;
    const out = dq.output();
    const candidates = [out.name, (q.input(0) as Value).name];
    const name = candidates.find((c) => floatValues.has(c) && !taken.has(c));
    if (!name) continue;
    taken.add(name);
    const info = floatValues.get(name) as { op: string; index: number };
    matches.push({ float: name, quantized: out.name, op: info.op, index: info.index });
  }
  return matches.sort((a, b) => a.index - b.index);
}

export interface LayerAgreement extends TensorAgreement {
  /** The QDQ model's tensor compared. */
  quantized: string;
  op: string;
}

/** Exposes the named tensors of a copy of `m` as its outputs (and only them). */
function exposing(m: Model, names: readonly string[]): Model {
  const copy = readOnnx(writeOnnx(m).model);
  const g = copy.graph;
  const byName = new Map<string, Value>();
  for (const v of g.inputs) byName.set(v.name, v);
  for (const n of g.nodes) for (const o of n.outputs) if (o) byName.set(o.name, o);
  g.outputs.splice(0, g.outputs.length);
  for (const name of names) {
    const v = byName.get(name);
    if (!v) throw new Error(`tensor ${name} is not in the model`);
    if (!v.type) v.type = { kind: 'tensor', dtype: 'float32' };
    if (!g.outputs.includes(v)) g.addOutput(v);
  }
  return copy;
}

/** SQNR and cosine of every matched layer over the data, worst SQNR first. */
export async function compareLayers(
  float: Model,
  qdq: Model,
  data: Dataset,
  backend: Backend,
  options: { limit?: number; batchSize?: number; threads?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<LayerAgreement[]> {
  // The quantizer optimized the model first (BatchNorm folded into the Conv that kept its
  // name, say): compare against the float model optimized the same way.
  const prepared = readOnnx(writeOnnx(float).model);
  prepareForQuantization(prepared);
  float = prepared;
  const matches = matchLayers(float, qdq).filter((m) => m.op !== 'input');
  if (matches.length === 0) {
    throw badInput(
      'no layer of the quantized model matches a tensor of the float model by name; compare a float model with its QDQ version',
    );
  }
  const a = exposing(
    float,
    matches.map((m) => m.float),
  );
  const b = exposing(
    qdq,
    matches.map((m) => m.quantized),
  );
  const result = await compareOnData(a, b, data, backend, {
    ...options,
    batchSize: options.batchSize ?? 8,
    pairs: matches.map((m) => [m.float, m.quantized] as const),
  });
  const byName = new Map(matches.map((m) => [m.float, m]));
  return result.outputs
    .map(({ top1Agreement: _, ...o }) => {
      // Arg-max agreement means something for scores, not for an intermediate tensor.
      const m = byName.get(o.name) as LayerMatch;
      return { ...o, quantized: m.quantized, op: m.op };
    })
    .sort((x, y) => x.sqnrDb - y.sqnrDb);
}
