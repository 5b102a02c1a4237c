/**
 * Gemm (or MatMul of a 2-D input by a constant 2-D B) followed by an inference
 * BatchNormalization over its features becomes one Gemm. Per output feature j, with
 * s = γ/√(σ²+ε) and t = β − s·μ:
 *
 *   BN(α·A·B + β_g·C)[:, j] = α·A·(B[:, j]·s_j) + (β_g·C_j·s_j + t_j)
 *
 * so B's column j (row j when transB) is scaled by s_j and the bias becomes C' = β_g·C·s + t with
 * beta 1. A MatMul becomes a Gemm in place (same node name and output). Only when the product is
 * read by the BatchNormalization alone, and B, C and the parameters are float32 constants.
 */
import type { Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { batchNormAffine, fusedName, newBiasName } from './channel-fold.js';
import { addConstant, bypass } from './edit.js';
import { canReplace, constantValue, hasOneUse, producedBy, rankOf } from './match.js';
import { pattern } from './pass.js';

interface Found {
  bn: Node;
  node: Node;
  b: Tensor;
  transB: boolean;
  /** β_g·C per output feature, or undefined without C. */
  c: Float64Array | undefined;
  scale: Float64Array;
  shift: Float64Array;
}

/** Gemm's C as one value per output feature (times beta), when it is a constant broadcast along rows. */
function biasPerFeature(node: Node, n: number): Float64Array | undefined | null {
  const v = node.input(2);
  if (!v) return undefined;
  const t = constantValue(v);
  if (t?.dtype !== 'float32' || t.rank > 2) return null;
  const ok = t.size === 1 || (t.dims[t.rank - 1] === n && (t.rank === 1 || t.dims[0] === 1));
  if (!ok) return null;
  const beta = node.float('beta', 1);
  const data = t.data as Float32Array;
  return Float64Array.from({ length: n }, (_, j) => beta * (data.length === 1 ? data[0] : data[j]));
}

export const fuseGemmBn = pattern<Found>({
  name: 'fuse-gemm-bn',
  description: 'folds an inference BatchNormalization into the Gemm or constant-weight MatMul before it',
  level: 'basic',
  roots: ['BatchNormalization'],
  match(bn, ctx) {
    const y = bn.outputs[0];
    const x = bn.input(0);
    // Gemm before opset 7 needs a broadcast attribute to take a per-feature C.
    if (!y || !x || bn.inputs.length !== 5 || ctx.opset < 7) return undefined;
    const node = producedBy(x, 'Gemm', 'MatMul');
    if (!node || !hasOneUse(x) || !canReplace(y, x)) return undefined;
    const b = constantValue(node.input(1));
    if (b?.dtype !== 'float32' || b.rank !== 2) return undefined;
    let transB = false;
    let c: Float64Array | undefined;
    if (node.opType === 'MatMul') {
      if (rankOf(node.input(0)) !== 2) return undefined;
    } else {
      transB = node.int('transB', 0) !== 0;
      const bias = biasPerFeature(node, transB ? b.dims[0] : b.dims[1]);
      if (bias === null) return undefined;
      c = bias;
    }
    const n = transB ? b.dims[0] : b.dims[1];
    const affine = batchNormAffine(bn, n);
    return affine && { bn, node, b, transB, c, ...affine };
  },
  apply({ bn, node, b, transB, c, scale, shift }) {
    const g = node.graph;
    const src = b.data as Float32Array;
    const cols = b.dims[1];
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = src[i] * scale[transB ? Math.floor(i / cols) : i % cols];
    const bias = Float32Array.from(scale, (s, j) => (c ? c[j] : 0) * s + shift[j]);
    const biasName = node.input(2) ? fusedName(node.input(2), 'bias') : newBiasName(node.input(1));
    node.setInput(1, addConstant(g, fusedName(node.input(1), 'weights'), Tensor.from('float32', b.dims, out)));
    node.setInput(2, addConstant(g, biasName, Tensor.from('float32', [scale.length], bias)));
    node.opType = 'Gemm';
    node.attrs.delete('beta');
    bypass(bn, node.output());
  },
});
