/**
 * What static quantization will do to a graph, decided before any data is seen: which nodes run
 * in int8, which activation tensors get a QuantizeLinear → DequantizeLinear pair, which tensor's
 * calibrated range sets each pair's parameters, and which ReLU/Clip the Q's range absorbs.
 * Calibration observes exactly the tensors the plan lists; qdq.ts then rewrites the graph.
 *
 * The op rules follow what onnxruntime fuses from QDQ form (its QDQ selector/action registry,
 * onnxruntime/core/optimizer/qdq_transformer/selectors_actions), since a QDQ group it does not
 * fuse runs slower than float:
 * - Conv, Gemm, MatMul (and ConvTranspose, for size): DQ on every input — bias included, as
 *   int32 with scale input × weight — and a Q on the output. A Conv's group fuses into QLinearConv
 *   only when the output goes through Q alone; Gemm and MatMul also fuse with a float output
 *   (QGemm, MatMulIntegerToFloat), so a graph output stays float.
 * - Add, Mul (QLinearAdd/Mul), Concat (QLinearConcat), AveragePool, GlobalAveragePool, Sigmoid,
 *   LeakyRelu (QLinear* unary ops): DQ on every input, Q on the output with its own range.
 * - Data movement (MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Resize, …): DQ → op
 *   → Q with the input's parameters, which onnxruntime drops so the op runs on the 8-bit data.
 * - Relu, and Clip with a lower bound of 0, after an op that owns its output range: removed, the
 *   Q's range starting at 0 (zero point at the grid's minimum) does the clamping.
 * Everything else stays float and reads dequantized values — HardSigmoid and HardSwish among
 * them: onnxruntime has no QLinear kernel for either, so they run in float between the DQ of
 * their input and the Q of whatever quantized op reads their output.
 */
import type { Node, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { constantValue, isOp } from '../passes/match.js';
import type { QuantDType } from './params.js';
import { paramsForRange } from './params.js';

export interface PlanOptions {
  activation: QuantDType;
  /** Symmetric activation grids (zero point 0 for int8): no ReLU is absorbed then. */
  symmetricActivations: boolean;
  perChannel: boolean;
  /** Op types or node names that stay float. */
  exclude: readonly string[];
}

/** An activation tensor that gets a Q → DQ pair. */
export interface QuantTensor {
  value: Value;
  /** The tensor whose calibrated range sets the parameters (the absorbed ReLU's output, or `value`). */
  observe: Value;
  /** The ReLU or Clip the Q's range makes redundant, removed by the rewrite. */
  absorbs?: Node;
  /** Parameters taken from another tensor, for ops that only move data. */
  sharesWith?: QuantTensor;
  /** Set for tensors whose range the producing quantized op owns (they may absorb a ReLU). */
  owned: boolean;
}

/** A constant input of an elementwise op, stored as 8-bit data with a DQ. */
export interface QuantConstant {
  node: Node;
  index: number;
  tensor: Tensor;
}

export interface QuantNode {
  node: Node;
  /** The constant weight input and the axis of its per-channel scales (undefined: per tensor). */
  weight?: { index: number; axis: number | undefined };
  /** The bias input, stored as int32. */
  bias?: { index: number };
}

export interface FloatNode {
  node: Node;
  reason: string;
}

export interface QdqPlan {
  options: PlanOptions;
  tensors: QuantTensor[];
  constants: QuantConstant[];
  nodes: QuantNode[];
  /** Conv/Gemm/MatMul-like nodes that stay float, with why. */
  float: FloatNode[];
}

/** Ops whose weights are quantized per channel. */
export const COMPUTE_OPS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const;
/** Elementwise ops with a QLinear form in onnxruntime: DQ on each input, own Q on the output. */
const ELEMENTWISE_OPS = ['Add', 'Mul', 'Concat'];
/** Single-input ops with a QLinear form: own output range. */
const UNARY_OPS = ['AveragePool', 'GlobalAveragePool', 'Sigmoid', 'LeakyRelu'];
/** Ops that only move or select data: output shares the input's parameters. */
const DATA_MOVEMENT_OPS = [
  'MaxPool',
  'Reshape',
  'Flatten',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Resize',
  'Slice',
  'Gather',
  'Expand',
  'Tile',
  'DepthToSpace',
  'SpaceToDepth',
];

/** A constant quantized to one 8-bit grid must keep this SQNR (dB), else its op stays float. */
const CONSTANT_MIN_SQNR = 35;

function isFloatTensor(v: Value | null): v is Value {
  const t = v?.type;
  return !!v && t?.kind === 'tensor' && t.dtype === 'float32';
}

function isActivation(v: Value | null): v is Value {
  return isFloatTensor(v) && constantValue(v) === undefined;
}

/** Output-channel axis of a weight, for per-channel scales. */
function weightAxis(node: Node, weight: Tensor, perChannel: boolean): number | undefined {
  if (!perChannel) return undefined;
  switch (node.opType) {
    case 'Conv':
      return 0;
    case 'ConvTranspose':
      return 1;
    case 'Gemm':
      return node.int('transB', 0) ? 0 : 1;
    default:
      return weight.rank >= 2 ? weight.rank - 1 : undefined;
  }
}

/** Output channels of a compute node, from its weight. */
function outputChannels(node: Node, weight: Tensor): number {
  switch (node.opType) {
    case 'Conv':
      return weight.dims[0];
    case 'ConvTranspose':
      return weight.dims[1] * node.int('group', 1);
    case 'Gemm':
      return node.int('transB', 0) ? weight.dims[0] : weight.dims[1];
    default:
      return weight.dims[weight.rank - 1];
  }
}

/** SQNR (dB) of a constant quantized per tensor on the activation grid. */
function constantSqnr(t: Tensor, dtype: QuantDType, symmetric: boolean): number {
  const x = t.toFloat32();
  let lo = 0;
  let hi = 0;
  for (const v of x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const p = paramsForRange(lo, hi, dtype, symmetric);
  let signal = 0;
  let noise = 0;
  for (const v of x) {
    const q = Math.round(v / p.scale) * p.scale;
    signal += v * v;
    noise += (v - q) * (v - q);
  }
  return noise === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(signal / noise);
}

/** Plans static quantization of a model's main graph (topologically sorted, shapes inferred). */
export function planQuantization(nodes: readonly Node[], options: PlanOptions): QdqPlan {
  const exclude = new Set(options.exclude);
  const tensors = new Map<Value, QuantTensor>();
  const plan: QdqPlan = { options, tensors: [], constants: [], nodes: [], float: [] };

  const mark = (v: Value, owned = false, sharesWith?: QuantTensor): QuantTensor => {
    const existing = tensors.get(v);
    if (existing) return existing;
    const t: QuantTensor = { value: v, observe: v, owned, ...(sharesWith ? { sharesWith } : {}) };
    tensors.set(v, t);
    plan.tensors.push(t);
    return t;
  };
  /** The tensor at the root of a sharing chain (the one calibrated). */
  const root = (t: QuantTensor): QuantTensor => (t.sharesWith ? root(t.sharesWith) : t);
  /** Whether the output may get a Q: a float tensor that is not a graph output (those stay exact). */
  const quantizableOutput = (v: Value | null): v is Value => isFloatTensor(v) && !v.isGraphOutput;

  for (const node of nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    const op = node.opType;
    const isCompute = (COMPUTE_OPS as readonly string[]).includes(op);
    if (exclude.has(op) || (node.name && exclude.has(node.name))) {
      if (isCompute) plan.float.push({ node, reason: 'excluded' });
      continue;
    }
    if (isCompute) {
      planCompute(node);
      continue;
    }
    const x = node.input(0);
    const tx = x ? tensors.get(x) : undefined;
    const y = node.outputs[0] ?? null;
    if ((op === 'Relu' || op === 'Clip') && tx && x) {
      absorb(node, tx, x);
    } else if (DATA_MOVEMENT_OPS.includes(op) && tx && quantizableOutput(y)) {
      if (op === 'MaxPool' && node.outputs.filter((o) => o).length > 1) continue;
      if (op === 'Resize' && node.str('mode', 'nearest') === 'cubic') continue;
      mark(y, false, root(tx));
    } else if (UNARY_OPS.includes(op) && tx && quantizableOutput(y)) {
      mark(y, true);
    } else if (ELEMENTWISE_OPS.includes(op) && quantizableOutput(y)) {
      planElementwise(node, y);
    }
  }
  return plan;

  function planCompute(node: Node): void {
    const x = node.input(0);
    const w = node.input(1);
    if (!isActivation(x)) {
      plan.float.push({ node, reason: 'its input is not a float32 activation' });
      return;
    }
    if (!isFloatTensor(w)) {
      plan.float.push({ node, reason: 'its weight is not float32' });
      return;
    }
    const weight = constantValue(w);
    const entry: QuantNode = { node };
    if (weight) {
      if ((op(node) === 'Conv' || op(node) === 'ConvTranspose') && weight.rank < 3) {
        plan.float.push({ node, reason: `its weight has rank ${weight.rank}` });
        return;
      }
      entry.weight = { index: 1, axis: weightAxis(node, weight, options.perChannel) };
      const b = node.input(2);
      const bias = constantValue(b);
      const channels = outputChannels(node, weight);
      const biasFits =
        !!bias && bias.dtype === 'float32' && bias.size === channels && (bias.rank === 1 || (bias.rank === 2 && bias.dims[0] === 1));
      const gemmOk = op(node) !== 'Gemm' || (node.float('beta', 1) === 1 && node.float('alpha', 1) === 1);
      if (b && biasFits && gemmOk) entry.bias = { index: 2 };
    } else if (op(node) === 'Conv' || op(node) === 'ConvTranspose') {
      plan.float.push({ node, reason: 'its weight is not a constant' });
      return;
    } else {
      // MatMul or Gemm of two activations: both get activation grids.
      mark(w);
    }
    mark(x);
    plan.nodes.push(entry);
    const y = node.outputs[0] ?? null;
    if (quantizableOutput(y)) mark(y, true);
  }

  function op(node: Node): string {
    return node.opType;
  }

  /** Relu or Clip(0, ·) right after an op that owns its range: the Q's range does the clamping. */
  function absorb(node: Node, tx: QuantTensor, x: Value): void {
    const r = node.outputs[0];
    if (!r || !isFloatTensor(r) || r.isGraphOutput) return;
    if (options.symmetricActivations || !tx.owned || tx.absorbs || tx.value !== x) return;
    if (x.uses.length !== 1 || x.isGraphOutput) return;
    if (isOp(node, 'Clip')) {
      const lo = constantValue(node.input(1));
      const hi = node.input(2) ? constantValue(node.input(2)) : undefined;
      if (lo?.size !== 1 || lo.scalarValue() !== 0) return;
      if (node.input(2) && (hi?.size !== 1 || !(hi.scalarValue() > 0))) return;
    }
    tx.observe = r;
    tx.absorbs = node;
    tensors.set(r, tx);
  }

  function planElementwise(node: Node, y: Value): void {
    const inputs = node.inputs;
    if (!inputs.some((v) => v && tensors.has(v))) return;
    if (!inputs.every((v) => isFloatTensor(v))) return;
    const constants: QuantConstant[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const c = constantValue(inputs[i]);
      if (!c) continue;
      if (constantSqnr(c, options.activation, options.symmetricActivations) < CONSTANT_MIN_SQNR) return;
      constants.push({ node, index: i, tensor: c });
    }
    for (const v of inputs) if (v && !constantValue(v)) mark(v);
    plan.constants.push(...constants);
    mark(y, true);
  }
}

/** Values calibration must observe: the range source of every tensor that does not share one. */
export function observedValues(plan: QdqPlan): Value[] {
  const out = new Set<Value>();
  for (const t of plan.tensors) if (!t.sharesWith) out.add(t.observe);
  return [...out];
}
