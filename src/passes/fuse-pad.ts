/**
 * A constant-mode Pad in front of a Conv, AveragePool or MaxPool moves into the node's own
 * `pads` attribute, when what the node would pad with equals what the Pad wrote:
 * - Conv pads with zeros: the Pad value must be 0.
 * - AveragePool with count_include_pad=1 averages its padding as zeros: value 0. (With
 *   count_include_pad=0 the padded zeros would stop counting, so it stays.)
 * - MaxPool ignores its padding, which is the same as padding with −∞ while every window sees
 *   some input (pads below the kernel size, no dilation): value −∞, and no Indices output read
 *   (indices into the padded tensor would change).
 * The pads must be constant, non-negative, and zero on the batch and channel axes; the node's
 * auto_pad must be NOTSET, and pools must not use ceil_mode (its last window depends on where the
 * padding came from). Before opset 11 Pad takes pads and value as attributes, from 11 as inputs;
 * from 18 an optional axes input says which axes the pads are for.
 */
import { normAxis } from '../ir/dims.js';
import type { Node, Value } from '../ir/graph.js';
import { removeIfDead } from './edit.js';
import { constantNumbers, hasOneUse, isUnused, producedBy, rankOf } from './match.js';
import { type PassContext, pattern } from './pass.js';

interface Found {
  node: Node;
  pad: Node;
  x: Value;
  pads: number[];
}

/** The Pad's amounts over all axes ([begin…, end…]) and its fill value, when they are constants. */
function padOf(pad: Node, ctx: PassContext): { pads: number[]; value: number } | undefined {
  if (pad.str('mode', 'constant') !== 'constant') return undefined;
  if (ctx.opset < 11) {
    const pads = pad.ints(ctx.opset < 2 ? 'paddings' : 'pads');
    return pads && { pads, value: pad.float('value', 0) };
  }
  let pads = constantNumbers(pad.input(1));
  if (!pads) return undefined;
  let value = 0;
  if (pad.input(2)) {
    const v = constantNumbers(pad.input(2));
    if (v?.length !== 1) return undefined;
    value = v[0];
  }
  if (pad.input(3)) {
    // Opset 18: pads for the listed axes only; the rest get none.
    const rank = rankOf(pad.input(0));
    const axes = constantNumbers(pad.input(3))?.map((a) => (rank === undefined ? undefined : normAxis(a, rank)));
    if (!axes || rank === undefined || axes.some((a) => a === undefined) || pads.length !== 2 * axes.length) return undefined;
    if (new Set(axes).size !== axes.length) return undefined;
    const full = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, i) => {
      full[a as number] = (pads as number[])[i];
      full[rank + (a as number)] = (pads as number[])[axes.length + i];
    });
    pads = full;
  }
  return { pads, value };
}

/** The fill value the node's own padding amounts to, or undefined when its padding cannot absorb a Pad. */
function implicitFill(node: Node): number | undefined {
  if (node.str('auto_pad', 'NOTSET') !== 'NOTSET') return undefined;
  switch (node.opType) {
    case 'Conv':
      return 0;
    case 'AveragePool':
      return node.int('count_include_pad', 0) === 1 && node.int('ceil_mode', 0) === 0 ? 0 : undefined;
    case 'MaxPool':
      // Dilated windows could skip over the whole input and see padding only.
      if (node.int('ceil_mode', 0) !== 0 || !node.ints('dilations', []).every((d) => d === 1)) return undefined;
      return node.outputs.slice(1).every((v) => isUnused(v)) ? -Infinity : undefined;
    default:
      return undefined;
  }
}

export const fusePad = pattern<Found>({
  name: 'fuse-pad',
  description: 'moves a constant Pad in front of a Conv, AveragePool or MaxPool into its pads',
  level: 'basic',
  roots: ['Conv', 'AveragePool', 'MaxPool'],
  match(node, ctx) {
    const padded = node.input(0);
    const pad = producedBy(padded, 'Pad');
    const x = pad?.input(0);
    if (!pad || !x || !hasOneUse(padded)) return undefined;
    const fill = implicitFill(node);
    if (fill === undefined) return undefined;
    const found = padOf(pad, ctx);
    if (!found || found.value !== fill) return undefined;
    const { pads } = found;
    const rank = pads.length / 2;
    const inRank = rankOf(x);
    if (!Number.isInteger(rank) || rank < 3 || (inRank !== undefined && inRank !== rank)) return undefined;
    if (pads.some((p) => !Number.isInteger(p) || p < 0)) return undefined;
    if (pads[0] !== 0 || pads[1] !== 0 || pads[rank] !== 0 || pads[rank + 1] !== 0) return undefined;
    const spatial = rank - 2;
    const own = node.ints('pads') ?? new Array<number>(2 * spatial).fill(0);
    if (own.length !== 2 * spatial) return undefined;
    const merged = own.map((p, i) => p + (i < spatial ? pads[2 + i] : pads[rank + 2 + (i - spatial)]));
    if (node.opType !== 'Conv') {
      // Pools take pads smaller than the kernel only (onnxruntime rejects the rest), so no window
      // lies wholly in the padding.
      const kernel = node.ints('kernel_shape');
      if (!kernel || kernel.length !== spatial || merged.some((p, i) => p >= kernel[i % spatial])) return undefined;
    }
    return { node, pad, x, pads: merged };
  },
  apply({ node, pad, x, pads }) {
    node.setInput(0, x);
    node.attrs.set('pads', { type: 'ints', value: pads });
    removeIfDead(pad);
  },
});
