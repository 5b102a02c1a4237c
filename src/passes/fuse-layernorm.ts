/**
 * Layer normalization spelled out, back to LayerNormalization (opset 17):
 *
 *   m = ReduceMean(x, trailing axes)      d = Sub(x, m)
 *   v = ReduceMean(Pow(d, 2) or Mul(d, d), same axes)
 *   n = Div(d, Sqrt(Add(v, ε)))  or  Mul(d, Reciprocal(Sqrt(Add(v, ε))))
 *   y = Add(Mul(n, γ), β)                 (γ and β optional, constant)
 *
 * → LayerNormalization(x, γ or ones, β; axis = -k, epsilon = ε). ReduceMean's axes are an
 * attribute before opset 18 and a constant input from 18; keepdims must be 1. d is read by the
 * square and the division only; every other intermediate once. γ and β must broadcast only along
 * the normalized axes (they are reshaped, or expanded, to the normalized shape), which needs the
 * normalized dims static. float32 only.
 */
import type { Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { addConstant } from './edit.js';
import { constantOperand, replaceByNode, scalarConstant } from './fusion-helpers.js';
import { constantValue, dtypeOf, hasOneUse, isConstant, onlyConsumer, producedBy, rankOf } from './match.js';
import { type PassContext, pattern } from './pass.js';

interface Found {
  root: Node;
  x: Value;
  /** Number of trailing axes normalized. */
  k: number;
  normShape: number[];
  epsilon: number;
  gamma: Value | undefined;
  beta: Value | undefined;
  matched: Node[];
}

/** The node producing `v` when it is one of `ops` and `v` is read once. */
function single(v: Value | null | undefined, ...ops: string[]): Node | undefined {
  const n = producedBy(v, ...ops);
  return n && hasOneUse(v) ? n : undefined;
}

/** Number of trailing axes a keepdims ReduceMean over `rank` dims reduces, when they are trailing. */
function trailingAxes(n: Node, ctx: PassContext, rank: number): number | undefined {
  if (n.int('keepdims', 1) !== 1) return undefined;
  const raw = ctx.opset < 18 ? n.ints('axes') : n.input(1) ? constantNumbersOf(n.input(1)) : undefined;
  if (!raw || raw.length === 0) return undefined;
  const axes = [...new Set(raw.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (axes.some((a) => a < 0 || a >= rank)) return undefined;
  return axes.every((a, i) => a === rank - axes.length + i) ? axes.length : undefined;
}

function constantNumbersOf(v: Value | null): number[] | undefined {
  const t = constantValue(v);
  if (t?.dtype !== 'int64' || t.size > 64) return undefined;
  return t.toNumbers();
}

/**
 * A constant γ/β against the normalized shape: its elements expanded to exactly `normShape`, or
 * undefined when it is not float32 or would broadcast along a non-normalized axis.
 */
function perElement(v: Value, normShape: number[], rank: number): Tensor | undefined {
  const t = constantValue(v);
  if (t?.dtype !== 'float32' || t.rank > rank) return undefined;
  const k = normShape.length;
  // Axes before the normalized ones must be 1 (or absent).
  const lead = t.dims.slice(0, Math.max(0, t.rank - k));
  if (lead.some((d) => d !== 1)) return undefined;
  const dims = [...new Array(Math.max(0, k - t.rank)).fill(1), ...t.dims.slice(Math.max(0, t.rank - k))];
  if (dims.some((d, i) => d !== 1 && d !== normShape[i])) return undefined;
  if (dims.every((d, i) => d === normShape[i])) return t.rank === k ? t : Tensor.from('float32', normShape, t.data as Float32Array);
  const src = t.data as Float32Array;
  const size = normShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    // Index into the broadcast source: drop coordinates along its size-1 dims.
    let rest = i;
    let j = 0;
    let stride = 1;
    for (let a = k - 1; a >= 0; a--) {
      const coord = rest % normShape[a];
      rest = Math.floor(rest / normShape[a]);
      if (dims[a] !== 1) j += coord * stride;
      stride *= dims[a];
    }
    out[i] = src[j];
  }
  return Tensor.from('float32', normShape, out);
}

/** The normalizing node's (d, std) when `root` is Div(d, std) or Mul(d, Reciprocal(std)). */
function normalizer(root: Node): { d: Value; std: Value; matched: Node[] } | undefined {
  if (root.inputs.length !== 2) return undefined;
  if (root.opType === 'Div') {
    const d = root.input(0);
    const std = root.input(1);
    return d && std ? { d, std, matched: [] } : undefined;
  }
  for (const i of [0, 1]) {
    const rec = single(root.input(i), 'Reciprocal');
    const d = root.input(1 - i);
    const std = rec?.input(0);
    if (rec && d && std) return { d, std, matched: [rec] };
  }
  return undefined;
}

export const fuseLayernorm = pattern<Found>({
  name: 'fuse-layernorm',
  description: 'ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (·γ +β) → LayerNormalization (opset ≥ 17)',
  level: 'basic',
  roots: ['Div', 'Mul'],
  match(root, ctx) {
    if (ctx.opset < 17 || !root.outputs[0]) return undefined;
    const norm = normalizer(root);
    if (!norm) return undefined;
    const sqrt = single(norm.std, 'Sqrt');
    const addEps = single(sqrt?.input(0), 'Add');
    const eps = addEps && constantOperand(addEps, true);
    const varMean = single(eps?.other, 'ReduceMean');
    const sq = single(varMean?.input(0), 'Pow', 'Mul');
    const sub = producedBy(norm.d, 'Sub');
    const x = sub?.input(0);
    const mean = single(sub?.input(1), 'ReduceMean');
    if (!sqrt || !addEps || !eps || !varMean || !sq || !sub || !x || !mean || mean.input(0) !== x) return undefined;
    // d is read by the square and the normalizer only.
    const d = norm.d;
    const squareUses = sq.opType === 'Mul' ? 2 : 1;
    if (d.isGraphOutput || d.uses.length !== squareUses + 1) return undefined;
    if (!d.uses.every((u) => u.node === sq || u.node === root)) return undefined;
    if (sq.opType === 'Mul' ? sq.input(0) !== d || sq.input(1) !== d : sq.input(0) !== d) return undefined;
    if (dtypeOf(x) !== 'float32' || dtypeOf(root.output()) !== 'float32') return undefined;
    const rank = rankOf(x);
    const shape = x.type?.kind === 'tensor' ? x.type.shape : undefined;
    if (rank === undefined || !shape) return undefined;
    // Numbers: exponent 2, ε, matching trailing axes.
    if (sq.opType === 'Pow' && scalarConstant(sq.input(1), d) !== 2) return undefined;
    if (!(eps.value >= 0)) return undefined;
    const k = trailingAxes(mean, ctx, rank);
    if (k === undefined || trailingAxes(varMean, ctx, rank) !== k) return undefined;
    const normShape = shape.slice(rank - k);
    if (!normShape.every((dim): dim is number => typeof dim === 'number')) return undefined;
    const matched = [...norm.matched, sqrt, addEps, varMean, sq, sub, mean];
    // Optional ·γ then +β, constants broadcasting only along the normalized axes.
    let last = root;
    const affine = (op: 'Mul' | 'Add'): Value | undefined => {
      const next = onlyConsumer(last.output(), op);
      if (next?.inputs.length !== 2 || dtypeOf(next.outputs[0]) !== 'float32') return undefined;
      const i = next.input(0) === last.output() ? 1 : 0;
      const c = next.input(i);
      if (!isConstant(c) || next.input(1 - i) !== last.output() || !perElement(c, normShape as number[], rank)) return undefined;
      matched.push(last);
      last = next;
      return c;
    };
    const gamma = affine('Mul');
    const beta = affine('Add');
    return { root: last, x, k, normShape: normShape as number[], epsilon: eps.value, gamma, beta, matched };
  },
  apply({ root, x, k, normShape, epsilon, gamma, beta, matched }) {
    const g = root.graph;
    const rank = rankOf(x) as number;
    const constant = (v: Value | undefined, what: string, fill: number): Value => {
      const t = v
        ? (perElement(v, normShape, rank) as Tensor)
        : Tensor.from('float32', normShape, new Float32Array(normShape.reduce((a, b) => a * b, 1)).fill(fill));
      return v && t === v.initializer ? v : addConstant(g, `${root.output().name}_${what}`, t);
    };
    const scale = constant(gamma, 'scale', 1);
    const bias = beta ? constant(beta, 'bias', 0) : null;
    replaceByNode(
      root,
      'LayerNormalization',
      bias ? [x, scale, bias] : [x, scale],
      [
        ['axis', { type: 'int', value: -k }],
        ['epsilon', { type: 'float', value: epsilon }],
      ],
      matched,
    );
  },
});
