/**
 * Gemm's A, when a Reshape or Flatten makes it, in the one form exporters and mobile runtimes
 * recognise as "flatten, then a fully connected layer": Flatten(axis=1). The rewrite applies only
 * when the node provably computes [x₀, x₁·x₂·…] from its input x:
 * - Reshape(x, [N or 0 or −1, −1 or x₁·x₂·…]) — its target from a constant or from shape
 *   inference (Shape → Gather → Concat chains of a symbolic batch), then left to dead code;
 * - Flatten(x, axis) with the axes it merges into the first dim all 1 (or axis 0 and x₀ = 1).
 * When x is already 2-D the node computes x itself and goes away.
 */
import { dimEquals, dimProduct } from '../ir/dims.js';
import type { Node, Value } from '../ir/graph.js';
import type { Dim, Shape } from '../ir/types.js';
import { bypass } from './edit.js';
import { canReplace, constantNumbers, producedBy } from './match.js';
import { type PassContext, pattern } from './pass.js';

interface Found {
  node: Node;
  x: Value;
  /** Remove the node (x is already [x₀, rest]) rather than turn it into Flatten(axis=1). */
  remove: boolean;
}

function shapeOf(v: Value | null): Shape | undefined {
  const t = v?.type;
  return t?.kind === 'tensor' ? t.shape : undefined;
}

/** Reshape's target as dims (constant, or worked out by shape inference). */
function targetOf(node: Node, ctx: PassContext): Dim[] | undefined {
  const v = node.input(1);
  return constantNumbers(v, 64) ?? (v ? ctx.shapeValues.get(v) : undefined);
}

/** Whether Reshape(x, target) provably gives [x₀, rest]. */
function reshapeFlattens(node: Node, x: Shape, ctx: PassContext): boolean {
  const t = targetOf(node, ctx);
  if (t?.length !== 2) return false;
  const allowZero = ctx.opset >= 14 && node.int('allowzero', 0) !== 0;
  const [t0, t1] = t;
  const x0 = x[0];
  const rest = dimProduct(x.slice(1));
  // A zero-sized dim makes −1 ambiguous; do not reason about it.
  if (x0 === 0 || rest === 0) return false;
  const first = (t0 === 0 && !allowZero) || (t0 !== -1 && dimEquals(t0, x0));
  const second = t1 === -1 || dimEquals(t1, rest) || (t1 === 0 && !allowZero && dimEquals(x[1], rest));
  if (first) return second;
  // [−1, rest]: the −1 is x₀ once the second dim is provably the rest.
  return t0 === -1 && t1 !== -1 && dimEquals(t1, rest);
}

function flattenAxis(node: Node, x: Shape): number {
  const axis = node.int('axis', 1);
  return axis < 0 ? axis + x.length : axis;
}

/** Whether Flatten(x, a) gives the same as Flatten(x, 1). */
function flattenIsCanonical(a: number, x: Shape): boolean {
  if (a === 1) return true;
  if (a === 0) return dimEquals(x[0], 1);
  return a > 1 && a <= x.length && x.slice(1, a).every((d) => dimEquals(d, 1));
}

export const normalizeGemmInput = pattern<Found>({
  name: 'normalize-gemm-input',
  description: 'puts a Reshape or Flatten feeding Gemm in the canonical Flatten(axis=1) form, or removes it',
  level: 'basic',
  roots: ['Gemm'],
  match(gemm, ctx) {
    const a = gemm.input(0);
    const node = producedBy(a, 'Reshape', 'Flatten');
    const x = node?.input(0);
    if (!node || !a || !x) return undefined;
    const shape = shapeOf(x);
    if (!shape || shape.length < 2) return undefined;
    if (node.opType === 'Flatten') {
      const axis = flattenAxis(node, shape);
      if (!flattenIsCanonical(axis, shape)) return undefined;
      if (shape.length === 2 && canReplace(a, x)) return { node, x, remove: true };
      // Already Flatten(axis=1): nothing to do.
      return axis === 1 ? undefined : { node, x, remove: false };
    }
    if (!reshapeFlattens(node, shape, ctx)) return undefined;
    return { node, x, remove: shape.length === 2 && canReplace(a, x) };
  },
  apply({ node, x, remove }) {
    if (remove) {
      bypass(node, x);
      return;
    }
    node.opType = 'Flatten';
    node.truncateInputs(1);
    node.attrs.clear();
    node.attrs.set('axis', { type: 'int', value: 1 });
  },
});
