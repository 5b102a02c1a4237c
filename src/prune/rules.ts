/**
 * Per-op rules of the channel dependency analysis (analyze.ts): how each op carries, ties,
 * splits or consumes the channels of its inputs. A rule either describes the op exactly or
 * refuses it, pinning the channels it reads; it never guesses. The cases, by family:
 * - layers (Conv, ConvTranspose with group 1, Gemm, MatMul with constant weights): consume their
 *   input channels (the next layer's weights lose those input rows) and start fresh channels;
 *   a depthwise Conv carries its input's channels through (its filters go with them);
 * - element-wise ops keep channels; binary ones tie the channels of their operands position by
 *   position (residual Add, squeeze-excite Mul) once broadcasting is proven from the shapes, and
 *   slice per-channel constant operands;
 * - Concat/Split along the channel axis remap positions; Flatten/Reshape into a Gemm or MatMul
 *   turn a channel into a block of H·W features; Transpose, Squeeze, Unsqueeze and reductions
 *   over other axes move the channel axis;
 * - anything else (Shape of a channel value, a Reshape that regroups channels as in a channel
 *   shuffle, Softmax over channels, grouped convolutions) is refused.
 */
import type { Node, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Analyzer } from './analyze.js';
import type { ChannelMap } from './channels.js';

const UNARY = new Set([
  'Relu',
  'LeakyRelu',
  'Elu',
  'Selu',
  'Celu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Softplus',
  'Softsign',
  'Gelu',
  'Mish',
  'Clip',
  'Identity',
  'Dropout',
  'Neg',
  'Abs',
  'Exp',
  'Log',
  'Sqrt',
  'Reciprocal',
  'Floor',
  'Ceil',
  'Round',
  'Erf',
  'Cast',
  'Sin',
  'Cos',
  'ThresholdedRelu',
  'Not',
  'Sign',
  'Shrink',
]);

const BINARY = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Max',
  'Min',
  'Sum',
  'Mean',
  'Pow',
  'PRelu',
  'Mod',
  'And',
  'Or',
  'Xor',
  'Equal',
  'Greater',
  'Less',
  'GreaterOrEqual',
  'LessOrEqual',
  'Where',
]);

const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

const REDUCE = new Set([
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceSum',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
]);

const isFloatWeights = (t: Tensor | undefined): t is Tensor => !!t && (t.dtype === 'float32' || t.dtype === 'float16');

function ints(t: Tensor | undefined): number[] | undefined {
  if (!t || (t.dtype !== 'int64' && t.dtype !== 'int32')) return undefined;
  return t.toNumbers();
}

const norm = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** Axes given as an attribute (older opsets) or as input `index` (newer ones); null when absent. */
function axesOf(node: Node, a: Analyzer, index: number, rank: number): number[] | null | undefined {
  const attr = node.ints('axes');
  if (attr) return attr.map((x) => norm(x, rank));
  const v = node.input(index);
  if (!v) return null;
  return ints(a.constant(v))?.map((x) => norm(x, rank));
}

export function propagate(node: Node, a: Analyzer) {
  const op = node.opType;
  switch (op) {
    case 'Conv':
      return conv(node, a);
    case 'ConvTranspose':
      return convTranspose(node, a);
    case 'Gemm':
      return gemm(node, a);
    case 'MatMul':
      return matmul(node, a);
  }
  const x = a.map(node.input(0));
  if (!node.inputs.some((v) => a.map(v))) return;
  if (UNARY.has(op)) return unary(node, a);
  if (BINARY.has(op)) return elementwise(node, a);
  if (!x) return a.refuse(node, `read by ${node.describe()} as an operand the analysis does not follow`);
  if (POOLS.has(op)) {
    if (x.axis !== 1 || x.block !== 1) return a.refuse(node, `read by ${node.describe()} along an axis that is not the channel axis`);
    if (op === 'MaxPool' && node.outputs[1]?.uses.length) return a.refuse(node, `read by ${node.describe()}, whose Indices count channels`);
    return a.set(node.outputs[0], x);
  }
  if (REDUCE.has(op)) return reduce(node, a, x);
  switch (op) {
    case 'BatchNormalization':
      return perChannelParams(node, a, x, [1, 2, 3, 4]);
    case 'InstanceNormalization':
      return perChannelParams(node, a, x, [1, 2]);
    case 'Resize':
    case 'Upsample':
      return resize(node, a, x);
    case 'Concat':
      return concat(node, a);
    case 'Split':
      return split(node, a, x);
    case 'Slice':
      return slice(node, a, x);
    case 'Flatten':
      return flatten(node, a, x);
    case 'Reshape':
      return reshape(node, a, x);
    case 'Squeeze':
    case 'Unsqueeze':
      return squeeze(node, a, x);
    case 'Transpose': {
      const perm = node.ints('perm') ?? Array.from({ length: x.rank }, (_, i) => x.rank - 1 - i);
      if (x.block !== 1) return a.refuse(node, `read by ${node.describe()} after a flatten`);
      return a.set(node.outputs[0], { ...x, axis: perm.indexOf(x.axis) });
    }
    case 'Softmax':
    case 'LogSoftmax':
    case 'Hardmax': {
      const axis = norm(node.int('axis', a.opset >= 13 ? -1 : 1), x.rank);
      const independent = a.opset >= 13 ? axis !== x.axis : axis > x.axis;
      if (!independent) return a.refuse(node, `read by ${node.describe()}, which normalises across channels`);
      return a.set(node.outputs[0], x);
    }
    case 'Pad':
      return pad(node, a, x);
    case 'Shape':
    case 'Size':
      return a.refuse(node, `its shape is read by ${node.describe()}`);
    default:
      return a.refuse(node, `read by ${node.describe()}, an op the channel analysis does not know`);
  }
}

/** Element-wise ops of one channel-carrying input (extra inputs such as Clip's bounds carry none). */
function unary(node: Node, a: Analyzer) {
  const x = a.map(node.input(0));
  if (!x || node.inputs.slice(1).some((v) => a.map(v))) return a.refuse(node, `read by ${node.describe()} as a parameter`);
  for (const out of node.outputs) if (out) a.set(out, x);
}

function conv(node: Node, a: Analyzer) {
  const input = node.input(0);
  const x = a.map(input);
  const w = a.constant(node.input(1));
  const bias = node.input(2);
  if (!isFloatWeights(w) || w.rank < 3 || (bias && !isFloatWeights(a.constant(bias)))) {
    return a.refuse(node, `read by ${node.describe()}, whose weights are not constant floats`);
  }
  const group = node.int('group', 1);
  const out = node.outputs[0];
  const [m, perGroup] = w.dims;
  if (group === 1) {
    let consumed = false;
    if (x) {
      if (x.axis !== 1 || x.block !== 1 || x.refs.length !== perGroup) a.pinAll(x, `read by ${node.describe()} along another axis`);
      else {
        a.edit({ kind: 'slice', node, input: 1, axis: 1, by: input as Value });
        consumed = true;
      }
    }
    a.addRoot(node, 'Conv', m, 0, 1, w.rank);
    a.edit({ kind: 'slice', node, input: 1, axis: 0, by: out as Value });
    if (bias) a.edit({ kind: 'slice', node, input: 2, axis: 0, by: out as Value });
    a.mac({ node, out: out as Value, in: consumed ? (input as Value) : undefined });
    return;
  }
  if (!x) return;
  if (perGroup === 1 && m === group && x.refs.length === group && x.axis === 1 && x.block === 1) {
    // Depthwise: output channel c is computed from input channel c alone, so it follows it.
    a.set(out, x);
    a.edit({ kind: 'slice', node, input: 1, axis: 0, by: input as Value });
    if (bias) a.edit({ kind: 'slice', node, input: 2, axis: 0, by: input as Value });
    a.edit({ kind: 'group', node, by: input as Value });
    a.mac({ node, out: input as Value });
    return;
  }
  a.pinAll(x, `read by ${node.describe()}, a grouped convolution (group ${group}) whose groups the analysis does not split`);
}

function convTranspose(node: Node, a: Analyzer) {
  const input = node.input(0);
  const x = a.map(input);
  const w = a.constant(node.input(1));
  const bias = node.input(2);
  if (!isFloatWeights(w) || w.rank < 3 || node.int('group', 1) !== 1 || (bias && !isFloatWeights(a.constant(bias)))) {
    return a.refuse(node, `read by ${node.describe()}, a grouped or non-constant transposed convolution`);
  }
  const out = node.outputs[0] as Value;
  let consumed = false;
  if (x) {
    if (x.axis !== 1 || x.block !== 1 || x.refs.length !== w.dims[0]) a.pinAll(x, `read by ${node.describe()} along another axis`);
    else {
      a.edit({ kind: 'slice', node, input: 1, axis: 0, by: input as Value });
      consumed = true;
    }
  }
  a.addRoot(node, 'ConvTranspose', w.dims[1], 1, 1, w.rank);
  a.edit({ kind: 'slice', node, input: 1, axis: 1, by: out });
  if (bias) a.edit({ kind: 'slice', node, input: 2, axis: 0, by: out });
  a.mac({ node, out, in: consumed ? (input as Value) : undefined });
}

function gemm(node: Node, a: Analyzer) {
  const input = node.input(0) as Value;
  const x = a.map(input);
  const b = a.constant(node.input(1));
  if (!isFloatWeights(b) || b.rank !== 2 || node.int('transA', 0) !== 0 || a.map(node.input(1)) || a.map(node.input(2))) {
    return a.refuse(node, `read by ${node.describe()}, whose weights are not a constant float matrix`);
  }
  const transB = node.int('transB', 0) !== 0;
  const k = transB ? b.dims[1] : b.dims[0];
  const n = transB ? b.dims[0] : b.dims[1];
  let consumed = false;
  if (x) {
    if (x.axis !== 1 || x.rank !== 2 || x.refs.length * x.block !== k) a.pinAll(x, `read by ${node.describe()} along another axis`);
    else {
      a.edit({ kind: 'slice', node, input: 1, axis: transB ? 1 : 0, by: input });
      consumed = true;
    }
  }
  const out = node.outputs[0] as Value;
  const c = node.input(2);
  const ct = a.constant(c);
  const cSliced = !!ct && ct.rank >= 1 && ct.dims[ct.rank - 1] === n && n > 1;
  const cFine = !c || (!!ct && (ct.size === 1 || cSliced));
  if (!cFine) {
    a.mac({ node, in: consumed ? input : undefined });
    return;
  }
  a.addRoot(node, 'Gemm', n, transB ? 0 : 1, 1, 2);
  a.edit({ kind: 'slice', node, input: 1, axis: transB ? 0 : 1, by: out });
  if (cSliced && ct) a.edit({ kind: 'slice', node, input: 2, axis: ct.rank - 1, by: out });
  a.mac({ node, out, in: consumed ? input : undefined });
}

function matmul(node: Node, a: Analyzer) {
  const input = node.input(0) as Value;
  const x = a.map(input);
  const b = a.constant(node.input(1));
  const rank = a.shape(input)?.length;
  if (!isFloatWeights(b) || b.rank !== 2 || a.map(node.input(1)) || rank === undefined || rank < 2) {
    return a.refuse(node, `read by ${node.describe()}, whose second operand is not a constant float matrix`);
  }
  let consumed = false;
  if (x) {
    if (x.axis !== rank - 1 || x.refs.length * x.block !== b.dims[0]) a.pinAll(x, `read by ${node.describe()} along another axis`);
    else {
      a.edit({ kind: 'slice', node, input: 1, axis: 0, by: input });
      consumed = true;
    }
  }
  const out = node.outputs[0] as Value;
  a.addRoot(node, 'MatMul', b.dims[1], 1, rank - 1, rank);
  a.edit({ kind: 'slice', node, input: 1, axis: 1, by: out });
  a.mac({ node, out, in: consumed ? input : undefined });
}

/** Binary (or n-ary) element-wise ops: operands' channels are tied position by position. */
function elementwise(node: Node, a: Analyzer) {
  const mapped = node.inputs.filter((v): v is Value => !!v && !!a.map(v));
  const refV = mapped[0];
  const ref = a.map(refV) as ChannelMap;
  const fromEnd = ref.rank - ref.axis;
  const what = `${node.describe()}`;
  for (const v of mapped.slice(1)) {
    const m = a.map(v) as ChannelMap;
    if (m.rank - m.axis !== fromEnd || !a.tie(ref, m, `tied by ${what} to channels that cannot be removed`)) {
      return a.refuse(node, `read by ${what}, whose operands hold their channels differently`);
    }
  }
  for (let i = 0; i < node.inputs.length; i++) {
    const v = node.inputs[i];
    if (!v || a.map(v)) continue;
    const shape = a.shape(v);
    if (!shape) return a.refuse(node, `read by ${what} with operand "${v.name}" of unknown shape`);
    const idx = shape.length - fromEnd;
    if (idx < 0 || shape[idx] === 1) continue;
    if (shape[idx] !== ref.refs.length * ref.block) {
      return a.refuse(node, `read by ${what} with operand "${v.name}" whose broadcast over channels cannot be proven`);
    }
    if (a.constant(v) && ref.block === 1) a.edit({ kind: 'slice', node, input: i, axis: idx, by: refV });
    else a.pinAll(ref, `tied by ${what} to "${v.name}", whose channels cannot be removed`);
  }
  const outShape = a.shape(node.outputs[0]);
  const rank = outShape?.length ?? Math.max(...node.inputs.map((v) => a.shape(v)?.length ?? a.map(v)?.rank ?? 0));
  for (const out of node.outputs) if (out) a.set(out, { ...ref, axis: rank - fromEnd, rank });
}

/** BatchNormalization / InstanceNormalization: per-channel parameters follow the input. */
function perChannelParams(node: Node, a: Analyzer, x: ChannelMap, params: number[]) {
  if (x.axis !== 1 || x.block !== 1) return a.refuse(node, `read by ${node.describe()} along another axis`);
  if (node.outputs.slice(1).some((v) => (v?.uses.length ?? 0) > 0)) return a.refuse(node, `read by ${node.describe()} in training mode`);
  for (const i of params) {
    const t = a.constant(node.input(i));
    if (t?.rank !== 1 || t.dims[0] !== x.refs.length)
      return a.refuse(node, `read by ${node.describe()}, whose parameters are not constant`);
  }
  for (const i of params) a.edit({ kind: 'slice', node, input: i, axis: 0, by: node.input(0) as Value });
  a.set(node.outputs[0], x);
}

function resize(node: Node, a: Analyzer, x: ChannelMap) {
  if (x.axis !== 1 || x.block !== 1) return a.refuse(node, `read by ${node.describe()} along another axis`);
  const scalesIndex = node.opType === 'Upsample' || a.opset < 11 ? 1 : 2;
  const scales = a.constant(node.input(scalesIndex));
  const attrScales = node.floats('scales');
  const s = scales && scales.size > 0 ? scales.toNumbers() : attrScales;
  if (node.input(3) || !s || s[1] !== 1)
    return a.refuse(node, `read by ${node.describe()}, whose output size is not given by constant scales`);
  a.set(node.outputs[0], x);
}

function concat(node: Node, a: Analyzer) {
  const mapped = node.inputs.filter((v): v is Value => !!v && !!a.map(v));
  const ref = a.map(mapped[0]) as ChannelMap;
  const rank = a.shape(node.outputs[0])?.length ?? ref.rank;
  const axis = norm(node.int('axis', 0), rank);
  const fromEnd = ref.rank - ref.axis;
  if (mapped.some((v) => (a.map(v) as ChannelMap).rank - (a.map(v) as ChannelMap).axis !== fromEnd)) {
    return a.refuse(node, `read by ${node.describe()}, whose inputs hold their channels differently`);
  }
  if (axis !== rank - fromEnd) {
    // Joined along another axis: channels are tied position by position, as in an Add.
    for (const v of mapped.slice(1)) {
      if (!a.tie(ref, a.map(v) as ChannelMap, `tied by ${node.describe()}`))
        return a.refuse(node, `read by ${node.describe()} with mismatched channels`);
    }
    if (mapped.length < node.inputs.filter((v) => v).length)
      a.pinAll(ref, `joined by ${node.describe()} with a tensor whose channels cannot be removed`);
    return a.set(node.outputs[0], { ...ref, axis: rank - fromEnd, rank });
  }
  if (mapped.some((v) => (a.map(v) as ChannelMap).block !== 1)) return a.refuse(node, `read by ${node.describe()} after a flatten`);
  const refs: number[] = [];
  for (const v of node.inputs) {
    if (!v) continue;
    const m = a.map(v);
    if (m) {
      refs.push(...m.refs);
      continue;
    }
    const d = a.shape(v)?.[axis - (rank - (a.shape(v)?.length ?? rank))];
    if (typeof d !== 'number') return a.refuse(node, `read by ${node.describe()} with input "${v.name}" of unknown channel count`);
    for (let i = 0; i < d; i++) refs.push(-1);
  }
  a.set(node.outputs[0], { refs: Int32Array.from(refs), axis, rank, block: 1 });
}

function split(node: Node, a: Analyzer, x: ChannelMap) {
  const axis = norm(node.int('axis', 0), x.rank);
  const outs = node.outputs;
  if (axis !== x.axis) {
    for (const o of outs) if (o) a.set(o, x);
    return;
  }
  if (x.block !== 1) return a.refuse(node, `read by ${node.describe()} after a flatten`);
  let sizes = node.ints('split') ?? (node.input(1) ? ints(a.constant(node.input(1))) : undefined);
  if (!sizes) {
    if (node.input(1) || x.refs.length % outs.length !== 0)
      return a.refuse(node, `read by ${node.describe()}, whose part sizes are not constant`);
    sizes = outs.map(() => x.refs.length / outs.length);
  }
  if (sizes.length !== outs.length || sizes.reduce((s, d) => s + d, 0) !== x.refs.length) {
    return a.refuse(node, `read by ${node.describe()}, whose part sizes do not add up to the channels`);
  }
  let offset = 0;
  sizes.forEach((d, i) => {
    const o = outs[i];
    if (o) a.set(o, { ...x, refs: x.refs.slice(offset, offset + d) });
    offset += d;
  });
  a.edit({ kind: 'split', node, by: node.input(0) as Value, sizes });
}

function slice(node: Node, a: Analyzer, x: ChannelMap) {
  const axes = a.opset >= 10 ? axesOf(node, a, 3, x.rank) : node.ints('axes')?.map((v) => norm(v, x.rank));
  if (!axes) return a.refuse(node, `read by ${node.describe()}, which may slice the channel axis`);
  if (axes.includes(x.axis)) return a.refuse(node, `read by ${node.describe()}, which slices the channel axis`);
  a.set(node.outputs[0], x);
}

function pad(node: Node, a: Analyzer, x: ChannelMap) {
  const pads = a.opset >= 11 ? ints(a.constant(node.input(1))) : node.ints('pads');
  if (!pads || node.input(3) || pads.length !== 2 * x.rank || pads[x.axis] !== 0 || pads[x.axis + x.rank] !== 0) {
    return a.refuse(node, `read by ${node.describe()}, which may pad the channel axis`);
  }
  a.set(node.outputs[0], x);
}

function reduce(node: Node, a: Analyzer, x: ChannelMap) {
  const axesInput = node.opType === 'ReduceSum' ? 13 : 18;
  const axes = a.opset >= axesInput ? axesOf(node, a, 1, x.rank) : node.ints('axes')?.map((v) => norm(v, x.rank));
  if (!axes || axes.length === 0 || axes.includes(x.axis) || x.block !== 1) {
    return a.refuse(node, `read by ${node.describe()}, which reduces over the channel axis`);
  }
  const keep = node.int('keepdims', 1) !== 0;
  const axis = keep ? x.axis : x.axis - axes.filter((d) => d < x.axis).length;
  a.set(node.outputs[0], { ...x, axis, rank: keep ? x.rank : x.rank - axes.length });
}

/** Product of the static dims of `shape` after `from`, or undefined when one is not known. */
function innerSize(shape: ReadonlyArray<number | string | null> | undefined, from: number): number | undefined {
  if (!shape) return undefined;
  let n = 1;
  for (const d of shape.slice(from)) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

function flatten(node: Node, a: Analyzer, x: ChannelMap) {
  const k = norm(node.int('axis', 1), x.rank);
  const inner = innerSize(a.shape(node.input(0)), x.axis + 1);
  if (k !== x.axis || inner === undefined) {
    return a.refuse(node, `read by ${node.describe()}, which merges the channel axis with others`);
  }
  a.set(node.outputs[0], { refs: x.refs, axis: 1, rank: 2, block: x.block * inner });
}

/** A Reshape that keeps the dims before the channel axis and folds what follows into it (or adds 1s). */
function reshape(node: Node, a: Analyzer, x: ChannelMap) {
  const inShape = a.shape(node.input(0));
  const outShape = a.shape(node.outputs[0]);
  const target = ints(a.constant(node.input(1)));
  const refuse = () =>
    a.refuse(node, `read by ${node.describe()}, which regroups the channel axis (a channel shuffle, or a view the analysis cannot follow)`);
  if (!inShape || !outShape || !target || a.map(node.input(1))) return refuse();
  const ax = x.axis;
  for (let i = 0; i < ax; i++) if (inShape[i] === null || inShape[i] !== outShape[i]) return refuse();
  const inner = innerSize(inShape, ax + 1);
  if (inner === undefined) return refuse();
  const channels = x.refs.length * x.block;
  if (outShape.length === ax + 1) {
    // Flatten-like: [.., C, H, W] → [.., C·H·W].
    if (outShape[ax] !== channels * inner) return refuse();
    if (target[ax] > 0) a.edit({ kind: 'reshape', node, by: node.input(0) as Value, dim: ax, factor: x.block * inner });
    return a.set(node.outputs[0], { refs: x.refs, axis: ax, rank: ax + 1, block: x.block * inner });
  }
  // Unsqueeze-like: [.., C] or [.., C, 1, 1] → [.., C, 1, 1, …].
  if (inner !== 1 || outShape[ax] !== channels || outShape.slice(ax + 1).some((d) => d !== 1)) return refuse();
  if (target[ax] > 0) a.edit({ kind: 'reshape', node, by: node.input(0) as Value, dim: ax, factor: x.block });
  a.set(node.outputs[0], { ...x, rank: outShape.length });
}

function squeeze(node: Node, a: Analyzer, x: ChannelMap) {
  const unsq = node.opType === 'Unsqueeze';
  const outRank = a.shape(node.outputs[0])?.length;
  const rank = unsq ? outRank : x.rank;
  if (rank === undefined) return a.refuse(node, `read by ${node.describe()} with an unknown output rank`);
  let axes = a.opset >= 13 ? axesOf(node, a, 1, rank) : node.ints('axes')?.map((v) => norm(v, rank));
  if (!unsq && axes === null) {
    const shape = a.shape(node.input(0));
    axes = shape?.flatMap((d, i) => (d === 1 ? [i] : []));
  }
  if (!axes) return a.refuse(node, `read by ${node.describe()}, whose axes are not constant`);
  if (!unsq) {
    if (axes.includes(x.axis)) return a.refuse(node, `read by ${node.describe()}, which squeezes the channel axis`);
    return a.set(node.outputs[0], { ...x, axis: x.axis - axes.filter((d) => d < x.axis).length, rank: x.rank - axes.length });
  }
  let count = 0;
  for (let i = 0; i < rank; i++) {
    if (axes.includes(i)) continue;
    if (count === x.axis) return a.set(node.outputs[0], { ...x, axis: i, rank });
    count++;
  }
  a.refuse(node, `read by ${node.describe()}, whose axes do not match its input`);
}
