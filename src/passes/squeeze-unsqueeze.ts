/**
 * Unsqueeze(Squeeze(x, axes), axes) and Squeeze(Unsqueeze(x, axes), axes) give back x: the pair
 * goes. (Axes come from the attribute before opset 13 and from a constant input after.)
 */
import { normAxis } from '../ir/dims.js';
import type { Node, Value } from '../ir/graph.js';
import { removeIfDead } from './edit.js';
import { canReplace, constantNumbers, producedBy, rankOf } from './match.js';
import { type PassContext, pattern } from './pass.js';

function axesOf(n: Node, ctx: PassContext, rank: number | undefined): number[] | undefined {
  const raw = ctx.opset < 13 ? n.ints('axes') : constantNumbers(n.input(1));
  if (!raw || rank === undefined) return undefined;
  const norm = raw.map((a) => normAxis(a, rank));
  return norm.every((a) => a !== undefined) ? (norm as number[]).sort((a, b) => a - b) : undefined;
}

export const squeezeUnsqueeze = pattern<{ outer: Node; inner: Node; x: Value }>({
  name: 'squeeze-unsqueeze',
  description: 'cancels a Squeeze and an Unsqueeze of the same axes',
  level: 'basic',
  roots: ['Squeeze', 'Unsqueeze'],
  match(outer, ctx) {
    const innerOp = outer.opType === 'Squeeze' ? 'Unsqueeze' : 'Squeeze';
    const inner = producedBy(outer.input(0), innerOp);
    const x = inner?.input(0);
    if (!inner || !x || !outer.outputs[0]) return undefined;
    // Axes are relative to the larger-rank side: Unsqueeze's output, Squeeze's input.
    const wide = outer.opType === 'Squeeze' ? rankOf(outer.input(0)) : rankOf(x);
    const a = axesOf(outer, ctx, wide);
    const b = axesOf(inner, ctx, wide);
    if (!a || !b || a.length !== b.length || a.some((v, i) => v !== b[i])) return undefined;
    if (!canReplace(outer.output(), x)) return undefined;
    return { outer, inner, x };
  },
  apply({ outer, inner, x }) {
    outer.graph.replaceAllUses(outer.output(), x);
    removeIfDead(outer);
    removeIfDead(inner);
  },
});
