/**
 * Conv (or ConvTranspose) followed by a Mul or an Add with a per-output-channel constant — shape
 * [C,1,1…], [1,C,1,…], a scalar or any one-element tensor that does not raise the rank — folds
 * into the conv: conv(x)·s = (W·s)∗x + b·s and conv(x) + t = W∗x + (b + t), per output channel.
 * A Mul then an Add fold one after the other. Only when the conv's output has no other reader
 * and its weights, bias and the constant are float32.
 */
import type { Node, Value } from '../ir/graph.js';
import { type FoldableConv, foldableConv, foldIntoConv } from './channel-fold.js';
import { bypass } from './edit.js';
import { canReplace, constantValue, dtypeOf, isConstant } from './match.js';
import { pattern } from './pass.js';

interface Found {
  op: Node;
  conv: FoldableConv;
  /** One value per output channel. */
  values: Float64Array;
}

/**
 * The constant's value per output channel, when it broadcasts along the channel axis only: right
 * aligned with the conv output's rank, every dim is 1 except the channel dim, which is 1 or C.
 */
function perChannel(c: Value, rank: number, channels: number): Float64Array | undefined {
  const t = constantValue(c);
  if (t?.dtype !== 'float32' || t.rank > rank) return undefined;
  const offset = rank - t.rank;
  const ok = t.dims.every((d, i) => d === 1 || (i + offset === 1 && d === channels));
  if (!ok) return undefined;
  const data = t.data as Float32Array;
  return Float64Array.from({ length: channels }, (_, i) => (data.length === 1 ? data[0] : data[i]));
}

export const fuseConvMulAdd = pattern<Found>({
  name: 'fuse-conv-mul-add',
  description: 'folds a per-channel constant Mul or Add after a Conv into its weights and bias',
  level: 'basic',
  roots: ['Mul', 'Add'],
  match(op) {
    const out = op.outputs[0];
    if (!out || op.inputs.length !== 2 || dtypeOf(out) !== 'float32') return undefined;
    for (const side of [0, 1]) {
      const x = op.input(side);
      const c = op.input(1 - side);
      if (!isConstant(c)) continue;
      const conv = foldableConv(x);
      if (!conv || !canReplace(out, conv.node.output())) continue;
      const values = perChannel(c, conv.weights.rank, conv.channels);
      if (values) return { op, conv, values };
    }
    return undefined;
  },
  apply({ op, conv, values }) {
    if (op.opType === 'Mul') foldIntoConv(conv, values, undefined);
    else foldIntoConv(conv, undefined, values);
    bypass(op, conv.node.output());
  },
});
