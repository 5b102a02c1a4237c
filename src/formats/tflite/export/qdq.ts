/**
 * Reading a QDQ model (what `mobilize quantize` and onnxruntime's quantizer write) for the int8
 * export. TFLite has no Q/DQ pairs around float ops: its tensors are int8 with parameters. So the
 * pairs are taken out and their parameters kept:
 * - x → QuantizeLinear(s, z) → DequantizeLinear → readers: the readers read x again, and x is
 *   recorded as an int8 tensor with scale s and zero point z (uint8 grids become int8 by
 *   z − 128: the same reals on the same steps);
 * - DequantizeLinear of a constant (int8 weights, int32 biases, 8-bit constants): replaced by the
 *   float constant it stands for. The exporter quantizes weights again per TFLite's spec —
 *   symmetric max-abs weights come back with the same integers and scales, and biases are
 *   recomputed on the input × weight grid.
 * What remains is the float model with a parameter table, which the lowering turns into int8
 * ops wherever an op's inputs and output have parameters (and float ops elsewhere).
 */
import { badInput } from '../../../errors.js';
import type { Model, Node, Value } from '../../../ir/graph.js';
import { Tensor } from '../../../ir/tensor.js';
import type { ActivationParams } from './quant.js';

export function isQdq(model: Model): boolean {
  return model.graph.nodes.some((n) => n.opType === 'DequantizeLinear' || n.opType === 'QuantizeLinear');
}

function numbers(node: Node, index: number, what: string): number[] | undefined {
  const v = node.input(index);
  if (!v) return undefined;
  if (!v.initializer || v.isGraphInput) throw badInput(`cannot export ${node.describe()} to TFLite: its ${what} must be a constant`);
  return v.initializer.toNumbers();
}

/** Float constant a DequantizeLinear of constant data stands for. */
function dequantizeConstant(node: Node, q: Tensor): Tensor {
  const scales = numbers(node, 1, 'scale') ?? [1];
  const zps = numbers(node, 2, 'zero point') ?? [0];
  const data = q.toNumbers();
  const out = new Float32Array(data.length);
  const rank = q.dims.length;
  let axis = node.int('axis', 1);
  if (axis < 0) axis += rank;
  const perAxis = scales.length > 1;
  const inner = perAxis ? q.dims.slice(axis + 1).reduce((a, b) => a * b, 1) : 1;
  const channels = perAxis ? q.dims[axis] : 1;
  for (let i = 0; i < data.length; i++) {
    const c = perAxis ? Math.floor(i / inner) % channels : 0;
    out[i] = (data[i] - (zps[perAxis ? c : 0] ?? 0)) * scales[c];
  }
  return Tensor.from('float32', q.dims, out);
}

export interface StrippedQdq {
  /** int8 parameters of the float values the Q/DQ pairs quantized. */
  params: Map<Value, ActivationParams>;
  /** Inputs and outputs the model itself takes or gives as 8-bit integers, by name. */
  io: Map<string, 'int8' | 'uint8'>;
}

function paramsOf(node: Node, what: string): { params: ActivationParams; dtype: 'int8' | 'uint8' } {
  const scale = numbers(node, 1, 'scale') ?? [1];
  if (scale.length !== 1)
    throw badInput(`cannot export ${node.describe()} to TFLite: ${what} are quantized per tensor, this has ${scale.length} scales`);
  const zpValue = node.input(2);
  const data = node.opType === 'DequantizeLinear' ? node.input(0)?.type : node.outputs[0]?.type;
  // Without a zero point ONNX quantizes to uint8.
  const elem = zpValue?.initializer?.dtype ?? (data?.kind === 'tensor' ? data.dtype : undefined) ?? 'uint8';
  const zp = numbers(node, 2, 'zero point')?.[0] ?? 0;
  if (elem !== 'uint8' && elem !== 'int8')
    throw badInput(`cannot export ${node.describe()} to TFLite: ${elem} quantization (int8 and uint8 only)`);
  return { params: { scale: scale[0], zeroPoint: elem === 'uint8' ? zp - 128 : zp }, dtype: elem };
}

/** Removes Q/DQ pairs in place; returns the int8 parameters of the float values they quantized. */
export function stripQdq(model: Model): StrippedQdq {
  const g = model.graph;
  const params = new Map<Value, ActivationParams>();
  const io = new Map<string, 'int8' | 'uint8'>();
  for (const node of [...g.nodes]) {
    if (node.opType !== 'DequantizeLinear') continue;
    const q = node.input(0);
    if (!q) continue;
    const out = node.output(0);
    if (q.isGraphInput && !q.initializer) {
      // The model takes 8-bit data: the input becomes the float it stands for, given to TFLite
      // as that 8-bit type with these parameters.
      const p = paramsOf(node, 'inputs');
      q.type = { kind: 'tensor', dtype: 'float32', shape: q.type?.kind === 'tensor' ? q.type.shape : undefined };
      params.set(q, p.params);
      io.set(q.name, p.dtype);
      g.replaceAllUses(out, q);
      if (out.uses.length === 0 && !out.isGraphOutput) g.removeNode(node);
      continue;
    }
    if (q.initializer && !q.isGraphInput) {
      const value = g.addInitializer(g.freshName(`${out.name}_float`), dequantizeConstant(node, q.initializer));
      g.replaceAllUses(out, value);
      if (out.uses.length === 0 && !out.isGraphOutput) g.removeNode(node);
      continue;
    }
    const qn = q.producer;
    if (qn?.opType !== 'QuantizeLinear') {
      throw badInput(
        `cannot export ${node.describe()} to TFLite: it dequantizes "${q.name}", which no QuantizeLinear produces (a model with quantized inputs is not exported)`,
      );
    }
    const x = qn.input(0);
    if (!x) continue;
    const p = paramsOf(qn, 'activations').params;
    if (!params.has(x)) params.set(x, p);
    g.replaceAllUses(out, x);
    g.removeNode(node);
  }
  for (const node of [...g.nodes]) {
    const y = node.outputs[0];
    const x = node.input(0);
    if (node.opType !== 'QuantizeLinear' || !y?.isGraphOutput || !x) continue;
    // The model gives 8-bit data: the output is the float value, given to TFLite as 8-bit.
    const p = paramsOf(node, 'outputs');
    const name = y.name;
    if (!params.has(x)) params.set(x, p.params);
    g.replaceAllUses(y, x);
    io.set(name, p.dtype);
    if (y.uses.length === 0 && !y.isGraphOutput) g.removeNode(node);
  }
  for (const node of [...g.nodes].reverse()) {
    if (node.opType === 'QuantizeLinear' && node.outputs.every((o) => !o || o.uses.length === 0)) g.removeNode(node);
  }
  g.removeUnusedInitializers();
  return { params, io };
}
