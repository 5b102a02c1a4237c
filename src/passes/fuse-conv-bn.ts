/**
 * Conv (or ConvTranspose) followed by inference BatchNormalization becomes one conv with scaled
 * weights and a new bias. Per output channel c, with s = γ/√(σ²+ε):
 *
 *   BN(y) = γ·(y − μ)/√(σ²+ε) + β = s·y + (β − s·μ)
 *   y = W∗x + b  ⇒  BN(y) = (s·W)∗x + ((b − μ)·s + β),  so W' = W·s, b' = (b − μ)·s + β.
 *
 * For ConvTranspose the output channels are W's dim 1 times group. Only when the conv's output
 * is read by the BatchNormalization alone and every weight and parameter is a float32 constant.
 */
import type { Node } from '../ir/graph.js';
import { batchNormAffine, type FoldableConv, foldableConv, foldIntoConv } from './channel-fold.js';
import { bypass } from './edit.js';
import { canReplace } from './match.js';
import { pattern } from './pass.js';

interface Found {
  bn: Node;
  conv: FoldableConv;
  scale: Float64Array;
  shift: Float64Array;
}

export const fuseConvBn = pattern<Found>({
  name: 'fuse-conv-bn',
  description: 'folds an inference BatchNormalization into the Conv or ConvTranspose before it',
  level: 'basic',
  roots: ['BatchNormalization'],
  match(bn) {
    const y = bn.outputs[0];
    if (!y || bn.inputs.length !== 5) return undefined;
    const conv = foldableConv(bn.input(0));
    if (!conv || !canReplace(y, conv.node.output())) return undefined;
    const affine = batchNormAffine(bn, conv.channels);
    return affine && { bn, conv, ...affine };
  },
  apply({ bn, conv, scale, shift }) {
    foldIntoConv(conv, scale, shift);
    bypass(bn, conv.node.output());
  },
});
