/**
 * Relu next to Clip becomes one Clip:
 * - Clip(Relu(x), min, max) with min ≥ 0 is Clip(x, min, max): the Clip already cuts off
 *   everything Relu would.
 * - Relu(Clip(x, min, max)) with max ≥ 0 is Clip(x, max(min, 0), max). (With max < 0 the Relu
 *   makes everything 0 while the Clip would give max, so that case stays.) When min ≥ 0 already,
 *   the Relu simply goes; otherwise the Clip gets a new lower bound, a float32 constant (or the
 *   `min` attribute before opset 11).
 */
import type { Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { addConstant, bypass, removeIfDead } from './edit.js';
import { clipBounds } from './fusion-helpers.js';
import { canReplace, dtypeOf, hasOneUse, producedBy } from './match.js';
import { pattern } from './pass.js';

type Found = { kind: 'drop-relu-before'; clip: Node; relu: Node } | { kind: 'merge-relu-after'; clip: Node; relu: Node; min: number };

export const fuseReluClip = pattern<Found>({
  name: 'fuse-relu-clip',
  description: 'merges a Relu before or after a Clip into the Clip',
  level: 'basic',
  roots: ['Clip', 'Relu'],
  match(node, ctx) {
    if (node.opType === 'Clip') {
      const relu = producedBy(node.input(0), 'Relu');
      if (!relu || !hasOneUse(relu.output())) return undefined;
      const b = clipBounds(node);
      if (!b || !(b.min >= 0)) return undefined;
      return { kind: 'drop-relu-before', clip: node, relu };
    }
    const clip = producedBy(node.input(0), 'Clip');
    if (!clip || !hasOneUse(clip.output()) || !node.outputs[0]) return undefined;
    if (!canReplace(node.output(), clip.output())) return undefined;
    const b = clipBounds(clip);
    if (!b || !(b.max >= 0) || b.min > b.max) return undefined;
    // From opset 11 a new lower bound is a constant of x's type (before, an attribute): float32 only.
    if (b.min < 0 && ctx.opset >= 11 && dtypeOf(clip.input(0)) !== 'float32') return undefined;
    return { kind: 'merge-relu-after', clip, relu: node, min: b.min };
  },
  apply(found, ctx) {
    const { clip, relu } = found;
    if (found.kind === 'drop-relu-before') {
      clip.setInput(0, relu.input(0) as Value);
      removeIfDead(relu);
      return;
    }
    if (found.min < 0) {
      if (ctx.opset < 11) clip.attrs.set('min', { type: 'float', value: 0 });
      else clip.setInput(1, addConstant(clip.graph, `${clip.output().name}_min`, Tensor.scalar('float32', 0)));
    }
    bypass(relu, clip.output());
  },
});
