/**
 * Rewrites a graph into QDQ form from a plan (plan.ts) and calibrated ranges:
 * - each planned activation tensor x gets x → QuantizeLinear → DequantizeLinear, and its readers
 *   read the DequantizeLinear (graph outputs keep reading x itself, exact);
 * - a Relu/Clip the plan absorbs is removed, and the DequantizeLinear output takes its output's
 *   name, so the float model's tensor of that name is found again by name;
 * - weights become int8 initializers (symmetric, per output channel) behind a DequantizeLinear;
 * - biases become int32 initializers with scale = input scale × weight scale, zero point 0;
 * - constant inputs of quantized elementwise ops become 8-bit initializers on the activation grid.
 * Scale and zero point live as initializers on the Q/DQ nodes, where ONNX keeps them and where an
 * exporter (TFLite's int8 tensors, say) reads them.
 */
import { attr } from '../ir/attributes.js';
import type { Graph, Model, Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantValue } from '../passes/match.js';
import {
  biasScaleFloor,
  paramsForRange,
  type QuantDType,
  type QuantParams,
  qrange,
  quantizeBias,
  quantizeWeights,
  roundHalfEven,
} from './params.js';
import type { QdqPlan, QuantNode, QuantTensor } from './plan.js';

export type Ranges = ReadonlyMap<Value, readonly [number, number]>;

export interface QdqStats {
  /** Activation tensors that got a Q → DQ pair. */
  activations: number;
  /** ReLU/Clip nodes absorbed into a Q's range. */
  absorbed: number;
  /** Weight tensors stored as int8. */
  weights: number;
  /** Biases stored as int32. */
  biases: number;
  /** Bias elements that did not fit in int32 and were clamped. */
  biasClamped: number;
  /** Scales of activation grids, and of weight channels. */
  activationScales: number[];
  weightScales: number[];
}

interface Grid {
  params: QuantParams;
  scale: Value;
  zeroPoint: Value;
}

function zeroPointTensor(dtype: QuantDType, values: number[], dims: number[]): Tensor {
  return dtype === 'uint8' ? Tensor.from('uint8', dims, Uint8Array.from(values)) : Tensor.from('int8', dims, Int8Array.from(values));
}

export function applyPlan(model: Model, plan: QdqPlan, ranges: Ranges): QdqStats {
  const g = model.graph;
  const { activation: dtype, symmetricActivations: symmetric } = plan.options;
  const stats: QdqStats = {
    activations: 0,
    absorbed: 0,
    weights: 0,
    biases: 0,
    biasClamped: 0,
    activationScales: [],
    weightScales: [],
  };

  // Node names must be unique too (onnxruntime refuses duplicates); values get theirs from the graph.
  const nodeNames = new Set(g.nodes.map((n) => n.name).filter((n) => n));
  const nodeName = (base: string): string => {
    let name = base;
    for (let i = 1; nodeNames.has(name); i++) name = `${base}_${i}`;
    nodeNames.add(name);
    return name;
  };

  // 1. One grid (scale and zero-point initializers) per calibrated tensor; sharers reuse it.
  const grids = new Map<QuantTensor, Grid>();
  const gridOf = (t: QuantTensor): Grid => {
    const root = t.sharesWith ? t.sharesWith : t;
    let grid = grids.get(root);
    if (!grid) {
      const range = ranges.get(root.observe);
      if (!range) throw new Error(`no calibrated range for tensor ${root.observe.name}`);
      const params = paramsForRange(range[0], range[1], dtype, symmetric);
      const base = root.value.name;
      grid = {
        params,
        scale: g.addInitializer(`${base}_scale`, Tensor.from('float32', [], [params.scale])),
        zeroPoint: g.addInitializer(`${base}_zero_point`, zeroPointTensor(dtype, [params.zeroPoint], [])),
      };
      grids.set(root, grid);
      stats.activationScales.push(params.scale);
    }
    if (t !== root) grids.set(t, grid);
    return grid;
  };
  for (const t of plan.tensors) gridOf(t);

  // 2. Weights and biases, while node inputs still point at the float activations.
  let readers: Map<Value, QuantTensor> | undefined;
  const weightCache = new Map<string, { dq: Value; scales: Float32Array }>();
  for (const qn of plan.nodes) quantizeNodeParams(qn);

  // 3. Constant inputs of elementwise ops.
  const constantCache = new Map<Value, Value>();
  for (const c of plan.constants) {
    const v = c.node.input(c.index) as Value;
    let dq = constantCache.get(v);
    if (!dq) {
      dq = quantizeConstant(v, c.tensor);
      constantCache.set(v, dq);
    }
    c.node.setInput(c.index, dq);
  }

  // 4. Q → DQ on every planned activation.
  for (const t of plan.tensors) insertPair(t);

  g.removeUnusedInitializers();
  g.topoSort();
  return stats;

  function insertPair(t: QuantTensor): void {
    const { scale, zeroPoint } = gridOf(t);
    const v = t.value;
    const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
    const q = g.addNode('QuantizeLinear', [v, scale, zeroPoint], [`${v.name}_quantized`], { name: nodeName(`${v.name}_QuantizeLinear`) });
    q.output().type = { kind: 'tensor', dtype, ...(shape ? { shape: [...shape] } : {}) };
    const dq = g.addNode('DequantizeLinear', [q.output(), scale, zeroPoint], [`${v.name}_dequantized`], {
      name: nodeName(`${v.name}_DequantizeLinear`),
    });
    const out = dq.output();
    out.type = { kind: 'tensor', dtype: 'float32', ...(shape ? { shape: [...shape] } : {}) };
    stats.activations++;
    if (t.absorbs) {
      const r = t.absorbs.output();
      const name = r.name;
      for (const use of [...r.uses]) use.node.setInput(use.index, out);
      g.removeNode(t.absorbs);
      g.renameValue(out, name);
      stats.absorbed++;
      return;
    }
    for (const use of [...v.uses]) if (use.node !== q) use.node.setInput(use.index, out);
  }

  function quantizeNodeParams(qn: QuantNode): void {
    const node = qn.node;
    if (!qn.weight) return;
    const w = node.input(qn.weight.index) as Value;
    const wt = constantValue(w) as Tensor;
    const axis = qn.weight.axis;
    const channels = axis === undefined ? 1 : wt.dims[axis];
    const channelOf = biasChannel(node, wt, axis);
    const b = qn.bias ? (node.input(qn.bias.index) as Value) : undefined;
    const bias = b ? (constantValue(b) as Tensor).toFloat32() : undefined;
    const x = node.input(0) as Value;
    const xGrid = grids.get(planned(x));
    const inputScale = xGrid?.params.scale;
    const key = `${w.name}|${axis}`;
    let weight = weightCache.get(key);
    if (!weight) {
      const floor = bias && inputScale !== undefined ? biasScaleFloor(bias, inputScale, channels, channelOf) : undefined;
      const { values, scales } = quantizeWeights(wt.toFloat32(), wt.dims, axis, floor);
      const dims = axis === undefined ? [] : [channels];
      const qv = g.addInitializer(`${w.name}_quantized`, Tensor.from('int8', wt.dims, values));
      const sv = g.addInitializer(`${w.name}_scale`, Tensor.from('float32', dims, axis === undefined ? [scales[0]] : scales));
      // Symmetric: the zero point is 0, DequantizeLinear's default for int8 input, so none is stored —
      // except for Gemm and MatMul, whose fusion in onnxruntime (QGemm, QLinearMatMul) wants it given.
      const inputs = [qv, sv];
      if (node.opType === 'Gemm' || node.opType === 'MatMul') {
        inputs.push(g.addInitializer(`${w.name}_zero_point`, Tensor.from('int8', dims, new Int8Array(channels))));
      }
      const dq = g.addNode('DequantizeLinear', inputs, [`${w.name}_dequantized`], {
        name: nodeName(`${w.name}_DequantizeLinear`),
        ...(axis === undefined ? {} : { attrs: [['axis', attr.int(axis)]] }),
      });
      dq.output().type = { kind: 'tensor', dtype: 'float32', shape: [...wt.dims] };
      weight = { dq: dq.output(), scales };
      weightCache.set(key, weight);
      stats.weights++;
      for (const s of scales) stats.weightScales.push(s);
    }
    node.setInput(qn.weight.index, weight.dq);
    if (!b || !bias || inputScale === undefined || !qn.bias) return;
    if (bias.every((x) => x === 0)) {
      // An all-zero bias adds nothing: dropped rather than stored as int32 zeros with their scales.
      node.setInput(qn.bias.index, null);
      node.truncateInputs(qn.bias.index);
      return;
    }
    const { values, scales, clamped } = quantizeBias(bias, inputScale, weight.scales, channelOf);
    stats.biasClamped += clamped;
    stats.biases++;
    const uniform = scales.every((s) => s === scales[0]);
    const bq = g.addInitializer(`${b.name}_quantized`, Tensor.from('int32', [bias.length], values));
    const bs = g.addInitializer(`${b.name}_scale`, Tensor.from('float32', uniform ? [] : [bias.length], uniform ? [scales[0]] : scales));
    const dq = g.addNode('DequantizeLinear', [bq, bs], [`${b.name}_dequantized`], {
      name: nodeName(`${b.name}_DequantizeLinear`),
      ...(uniform ? {} : { attrs: [['axis', attr.int(0)]] }),
    });
    dq.output().type = { kind: 'tensor', dtype: 'float32', shape: [bias.length] };
    node.setInput(qn.bias.index, dq.output());
  }

  /** The planned tensor a node input reads (the input itself, or the ReLU output it absorbed). */
  function planned(v: Value): QuantTensor {
    if (!readers) {
      readers = new Map();
      for (const t of plan.tensors) {
        readers.set(t.value, t);
        const r = t.absorbs?.outputs[0];
        if (r) readers.set(r, t);
      }
    }
    const t = readers.get(v);
    if (!t) throw new Error(`tensor ${v.name} feeds a quantized node but has no grid`);
    return t;
  }

  function quantizeConstant(v: Value, t: Tensor): Value {
    const x = t.toFloat32();
    let lo = 0;
    let hi = 0;
    for (const a of x) {
      if (a < lo) lo = a;
      if (a > hi) hi = a;
    }
    const p = paramsForRange(lo, hi, dtype, symmetric);
    const [qmin, qmax] = qrange(dtype);
    const q = Array.from(x, (a) => Math.min(qmax, Math.max(qmin, roundHalfEven(a / p.scale) + p.zeroPoint)));
    const qv = g.addInitializer(`${v.name}_quantized`, zeroPointTensor(dtype, q, [...t.dims]));
    const sv = g.addInitializer(`${v.name}_scale`, Tensor.from('float32', [], [p.scale]));
    const zv = g.addInitializer(`${v.name}_zero_point`, zeroPointTensor(dtype, [p.zeroPoint], []));
    const dq = g.addNode('DequantizeLinear', [qv, sv, zv], [`${v.name}_dequantized`], { name: nodeName(`${v.name}_DequantizeLinear`) });
    dq.output().type = { kind: 'tensor', dtype: 'float32', shape: [...t.dims] };
    return dq.output();
  }
}

/** Maps a bias element (output channel) to the index of its weight scale. */
function biasChannel(node: Node, w: Tensor, axis: number | undefined): (i: number) => number {
  if (axis === undefined) return () => 0;
  if (node.opType === 'ConvTranspose') {
    const perGroup = w.dims[1];
    return (i) => i % perGroup;
  }
  return (i) => i;
}

/** Count of QuantizeLinear/DequantizeLinear nodes, for reports. */
export function countQdq(g: Graph): { q: number; dq: number } {
  let q = 0;
  let dq = 0;
  for (const n of g.nodes) {
    if (n.opType === 'QuantizeLinear') q++;
    else if (n.opType === 'DequantizeLinear') dq++;
  }
  return { q, dq };
}
