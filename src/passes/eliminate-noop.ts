/**
 * Ops that, with the attributes and constants they have here, return their input unchanged: a
 * Reshape/Expand/Flatten/Slice to the same shape, a Transpose by the identity permutation, a
 * Cast to the same type, a Pad by zeros, a Tile by ones, a one-input Concat, and x+0, x-0, x·1,
 * x/1 that do not broadcast. Their consumers read the input instead.
 */
import { dimEquals } from '../ir/dims.js';
import { dtypeFromCode } from '../ir/dtype.js';
import type { Node, Value } from '../ir/graph.js';
import type { Shape } from '../ir/types.js';
import { bypass } from './edit.js';
import { canReplace, constantNumbers, dtypeOf, isConstant, isConstantAll } from './match.js';
import { type PassContext, pattern } from './pass.js';

function shapeOf(v: Value | null): Shape | undefined {
  const t = v?.type;
  return t?.kind === 'tensor' ? t.shape : undefined;
}

/** Both shapes known and provably equal. */
function sameShape(a: Value | null, b: Value | null): boolean {
  const x = shapeOf(a);
  const y = shapeOf(b);
  return !!x && !!y && x.length === y.length && x.every((d, i) => dimEquals(d, y[i]));
}

function allEqual(v: Value | null, x: number): boolean {
  const n = constantNumbers(v);
  return !!n && n.every((e) => e === x);
}

/** The value a no-op node passes through, or undefined. */
const PASS_THROUGH: Record<string, (n: Node, ctx: PassContext) => Value | null | undefined> = {
  Reshape: (n) => (sameShape(n.input(0), n.outputs[0]) ? n.input(0) : undefined),
  Expand: (n) => (sameShape(n.input(0), n.outputs[0]) ? n.input(0) : undefined),
  Flatten: (n) => (sameShape(n.input(0), n.outputs[0]) ? n.input(0) : undefined),
  Tile: (n) => (allEqual(n.input(1), 1) ? n.input(0) : undefined),
  Transpose: (n) => {
    const perm = n.ints('perm');
    return perm?.every((p, i) => p === i) ? n.input(0) : undefined;
  },
  Cast: (n) => {
    const to = dtypeFromCode(n.int('to', 0));
    return to && dtypeOf(n.input(0)) === to ? n.input(0) : undefined;
  },
  Pad: (n, ctx) => {
    const pads = ctx.opset < 11 ? n.ints('pads') : constantNumbers(n.input(1));
    return pads?.every((p) => p === 0) ? n.input(0) : undefined;
  },
  Slice: (n, ctx) => {
    if (!sameShape(n.input(0), n.outputs[0])) return undefined;
    if (ctx.opset >= 10 && n.input(4) && !allEqual(n.input(4), 1)) return undefined;
    return n.input(0);
  },
  Concat: (n) => (n.inputs.length === 1 ? n.input(0) : undefined),
  Add: (n) => arithmetic(n, 0, true),
  Sub: (n) => arithmetic(n, 0, false),
  Mul: (n) => arithmetic(n, 1, true),
  Div: (n) => arithmetic(n, 1, false),
};

/** x ∘ c where c is the operation's identity element and does not change x's shape or type. */
function arithmetic(n: Node, identity: number, commutative: boolean): Value | undefined {
  const sides = commutative ? [0, 1] : [0];
  for (const i of sides) {
    const x = n.input(i);
    const c = n.input(1 - i);
    if (!x || !isConstant(c) || !isConstantAll(c, identity)) continue;
    if (sameShape(x, n.outputs[0]) && dtypeOf(x) === dtypeOf(n.outputs[0])) return x;
  }
  return undefined;
}

export const eliminateNoop = pattern<{ node: Node; through: Value }>({
  name: 'eliminate-noop',
  description: 'removes Reshape/Expand/Slice/Transpose/Cast/Pad/Tile/Concat and x+0, x·1 that change nothing',
  level: 'basic',
  roots: Object.keys(PASS_THROUGH),
  match(n, ctx) {
    const through = PASS_THROUGH[n.opType]?.(n, ctx);
    if (!through || !n.outputs[0] || n.outputs.length > 1) return undefined;
    if (!canReplace(n.output(), through)) return undefined;
    return { node: n, through };
  },
  apply({ node, through }) {
    bypass(node, through);
  },
});
