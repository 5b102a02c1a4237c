/**
 * Importance of output channels, the seed's filter score: s_f = Σ|w| over the weights of filter
 * f (L1), or their L2 norm, or |γ| of the BatchNormalization right after the layer (network
 * slimming's criterion; L1 where no BatchNormalization follows). A class of tied channels scores
 * the mean of its members' scores, each first divided by the mean score of its layer, so layers
 * of different widths and weight scales rank against each other on one scale.
 */
import type { Node } from '../ir/graph.js';
import { shapeSize } from '../ir/tensor.js';
import type { ChannelAnalysis } from './analyze.js';
import { constantInput, type Root } from './channels.js';

export type Criterion = 'l1' | 'l2' | 'bn-scale';

/** The BatchNormalization reading a layer's output alone, if there is one. */
function followingBatchNorm(root: Root): Node | undefined {
  const out = root.node.outputs[0];
  if (out?.uses.length !== 1 || out.isGraphOutput) return undefined;
  const n = out.uses[0].node;
  return n.opType === 'BatchNormalization' && n.inputs[0] === out ? n : undefined;
}

/** One score per output channel of a root layer. */
export function channelScores(root: Root, criterion: Criterion): Float64Array {
  const out = new Float64Array(root.channels);
  if (criterion === 'bn-scale') {
    const bn = followingBatchNorm(root);
    const gamma = constantInput(bn?.input(1));
    if (gamma && gamma.size === root.channels) {
      const g = gamma.toFloat32();
      for (let c = 0; c < root.channels; c++) out[c] = Math.abs(g[c]);
      return out;
    }
  }
  const w = constantInput(root.node.input(1));
  if (!w) return out;
  const data = w.toFloat32();
  const dims = w.dims;
  const axis = root.weightAxis;
  const outer = shapeSize(dims.slice(0, axis));
  const inner = shapeSize(dims.slice(axis + 1));
  const n = dims[axis];
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < n; c++) {
      const start = (o * n + c) * inner;
      let s = 0;
      for (let i = 0; i < inner; i++) {
        const x = data[start + i];
        s += criterion === 'l2' ? x * x : Math.abs(x);
      }
      out[c] += s;
    }
  }
  if (criterion === 'l2') for (let c = 0; c < n; c++) out[c] = Math.sqrt(out[c]);
  return out;
}

/** Normalised score of every channel class (keyed by its representative id). */
export function classScores(analysis: ChannelAnalysis, criterion: Criterion): Map<number, number> {
  const { sets, roots } = analysis;
  const sum = new Map<number, number>();
  const count = new Map<number, number>();
  for (const root of roots) {
    const s = channelScores(root, criterion);
    const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
    for (let c = 0; c < root.channels; c++) {
      const cls = sets.find(root.first + c);
      sum.set(cls, (sum.get(cls) ?? 0) + (mean > 0 ? s[c] / mean : 0));
      count.set(cls, (count.get(cls) ?? 0) + 1);
    }
  }
  const out = new Map<number, number>();
  for (const [cls, s] of sum) out.set(cls, s / (count.get(cls) ?? 1));
  return out;
}
