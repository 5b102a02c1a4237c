/**
 * Folding a per-output-channel affine map y ↦ s·y + t into the layer that computes y, shared by
 * the Conv and Gemm fusions. Only float32 weights are folded (other dtypes are left alone); the
 * arithmetic is done in float64 and rounded once.
 */
import type { Graph, Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { addConstant } from './edit.js';
import { constantValue, hasOneUse, producedBy } from './match.js';

/** A Conv or ConvTranspose whose weights (and bias, if any) are float32 constants. */
export interface FoldableConv {
  node: Node;
  weights: Tensor;
  /** The bias, one per output channel, or undefined when the conv has none. */
  bias: Float32Array | undefined;
  /** Output channels: W's dim 0 for Conv, dim 1 × group for ConvTranspose. */
  channels: number;
}

/** The conv producing `v` when `v` is its only reader's input and its constants can be rewritten. */
export function foldableConv(v: Value | null): FoldableConv | undefined {
  const node = producedBy(v, 'Conv', 'ConvTranspose');
  if (!node || !hasOneUse(v) || node.inputs.length > 3) return undefined;
  const weights = constantValue(node.input(1));
  if (weights?.dtype !== 'float32' || weights.rank < 3) return undefined;
  const group = node.int('group', 1);
  if (group < 1) return undefined;
  let channels: number;
  if (node.opType === 'Conv') {
    channels = weights.dims[0];
  } else {
    if (weights.dims[0] % group !== 0) return undefined;
    channels = weights.dims[1] * group;
  }
  let bias: Float32Array | undefined;
  const b = node.input(2);
  if (b) {
    const t = constantValue(b);
    if (t?.dtype !== 'float32' || t.rank !== 1 || t.dims[0] !== channels) return undefined;
    bias = t.data as Float32Array;
  }
  return { node, weights, bias, channels };
}

/** Output channel of each weight element, for Conv ([M, C/g, k…]) or ConvTranspose ([C, M/g, k…]). */
function channelIndex(conv: FoldableConv): (i: number) => number {
  const dims = conv.weights.dims;
  const kernel = dims.slice(2).reduce((a, d) => a * d, 1);
  if (conv.node.opType === 'Conv') return (i) => Math.floor(i / (dims[1] * kernel));
  const perGroupOut = dims[1];
  const perGroupIn = dims[0] / conv.node.int('group', 1);
  return (i) => {
    const row = Math.floor(i / kernel);
    const c = Math.floor(row / perGroupOut);
    return Math.floor(c / perGroupIn) * perGroupOut + (row % perGroupOut);
  };
}

/**
 * A name for a rewritten constant: `w` becomes `w_fused`, a new bias `w_fused_bias`; folding
 * again keeps those stems (the graph makes them unique with a number, which is dropped here).
 */
export function fusedName(v: Value | null, fallback: string): string {
  const name = v?.name ?? fallback;
  const m = /^(.*_fused(?:_bias)?)(?:_\d+)?$/.exec(name);
  return m ? m[1] : `${name}_fused`;
}

/** A name for a bias that did not exist before, after the weights `w`. */
export function newBiasName(w: Value | null): string {
  return `${fusedName(w, 'weights').replace(/_bias$/, '')}_bias`;
}

/**
 * Makes the conv compute s·conv(x) + t per output channel: W' = W·s[oc], b' = b·s + t. `scale`
 * or `shift` may be left out (1 and 0).
 */
export function foldIntoConv(conv: FoldableConv, scale: ArrayLike<number> | undefined, shift: ArrayLike<number> | undefined): void {
  const { node, weights, bias, channels } = conv;
  const g: Graph = node.graph;
  const weightsBefore = node.input(1);
  if (scale) {
    const src = weights.data as Float32Array;
    const out = new Float32Array(src.length);
    const oc = channelIndex(conv);
    for (let i = 0; i < src.length; i++) out[i] = src[i] * scale[oc(i)];
    node.setInput(1, addConstant(g, fusedName(node.input(1), 'weights'), Tensor.from('float32', weights.dims, out)));
  }
  if (!bias && !shift) return;
  const b = new Float32Array(channels);
  for (let c = 0; c < channels; c++) b[c] = (bias ? bias[c] : 0) * (scale ? scale[c] : 1) + (shift ? shift[c] : 0);
  const biasName = node.input(2) ? fusedName(node.input(2), 'bias') : newBiasName(weightsBefore);
  node.setInput(2, addConstant(g, biasName, Tensor.from('float32', [channels], b)));
}

/** Inference BatchNormalization as y ↦ s·y + t per channel, when its parameters are float32 constants of length `channels`. */
export function batchNormAffine(bn: Node, channels: number): { scale: Float64Array; shift: Float64Array } | undefined {
  // One output only: before opset 14 the statistics outputs are what marks training mode.
  if (bn.outputs.slice(1).some((v) => v) || bn.int('training_mode', 0) !== 0 || bn.int('spatial', 1) !== 1) return undefined;
  const params: Float32Array[] = [];
  for (let i = 1; i <= 4; i++) {
    const t = constantValue(bn.input(i));
    if (t?.dtype !== 'float32' || t.rank !== 1 || t.dims[0] !== channels) return undefined;
    params.push(t.data as Float32Array);
  }
  const [gamma, beta, mean, variance] = params;
  const eps = bn.float('epsilon', 1e-5);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + eps);
    shift[c] = beta[c] - mean[c] * scale[c];
    if (!Number.isFinite(scale[c]) || !Number.isFinite(shift[c])) return undefined;
  }
  return { scale, shift };
}
