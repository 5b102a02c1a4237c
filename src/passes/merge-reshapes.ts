/**
 * A chain of Reshape/Flatten/Squeeze/Unsqueeze only moves dims around: the last node of the chain
 * becomes one Reshape of the chain's first input, rewritten in place (its output keeps its name);
 * the others go when nothing else reads them. Two ways to know the target:
 *
 * - The last node is a Reshape with a constant target that has no 0 entries (or has
 *   allowzero=1): the same target applied to the chain's input gives the same result, since a
 *   Reshape depends only on the element count (the -1 entry is worked out from it).
 * - Otherwise the target is built from the last node's inferred output shape: known dims are
 *   written out; a symbolic dim equal to the input's dim at the same position is a 0 ("copy",
 *   allowzero=0); one remaining dim may be -1, but only when every other entry is a known
 *   non-zero number (with a 0 entry in the same target, a -1 cannot be worked out for an empty
 *   tensor, and onnxruntime rejects it). A known 0 dim needs allowzero=1 (opset ≥ 14) and a
 *   fully known shape.
 * When neither works (two unknown dims, say), the chain stays.
 */
import { dimEquals } from '../ir/dims.js';
import type { Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Dim, Shape } from '../ir/types.js';
import { addConstant, removeIfDead } from './edit.js';
import { constantNumbers, isConstant, producedBy } from './match.js';
import { type PassContext, pattern } from './pass.js';

const RESHAPE_LIKE = ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'];

/** Longest chain followed upward (a guard against pathological graphs). */
const MAX_CHAIN = 64;

interface Found {
  node: Node;
  x: Value;
  /** The existing target value (kept), or the numbers of a new one. */
  target: Value | number[];
  allowZero: boolean;
}

function shapeOf(v: Value | null): Shape | undefined {
  const t = v?.type;
  return t?.kind === 'tensor' ? t.shape : undefined;
}

/** The chain's first input: up through reshape-like producers. */
function chainInput(v: Value): Value {
  let cur = v;
  for (let i = 0; i < MAX_CHAIN; i++) {
    const p = producedBy(cur, ...RESHAPE_LIKE);
    const next = p?.input(0);
    if (!p || !next) break;
    cur = next;
  }
  return cur;
}

/** Target for Reshape(x) that provably gives `out`, or undefined. */
function targetFromShapes(out: Shape, input: Shape | undefined, opset: number): { dims: number[]; allowZero: boolean } | undefined {
  if (out.some((d) => d === 0)) {
    if (opset < 14 || !out.every((d): d is number => typeof d === 'number')) return undefined;
    return { dims: out, allowZero: true };
  }
  const dims: number[] = [];
  let inferred = -1;
  let copies = 0;
  out.forEach((d: Dim, i) => {
    if (typeof d === 'number') {
      dims.push(d);
    } else if (input && i < input.length && dimEquals(d, input[i])) {
      dims.push(0);
      copies++;
    } else {
      if (inferred < 0) inferred = i;
      else inferred = -2;
      dims.push(-1);
    }
  });
  if (inferred === -2) return undefined;
  if (inferred >= 0 && copies > 0) return undefined;
  return { dims, allowZero: false };
}

export const mergeReshapes = pattern<Found>({
  name: 'merge-reshapes',
  description: 'turns a chain of Reshape/Flatten/Squeeze/Unsqueeze into one Reshape',
  level: 'basic',
  roots: RESHAPE_LIKE,
  match(node, ctx: PassContext) {
    if (ctx.opset < 5 || !node.outputs[0] || node.outputs.length !== 1) return undefined;
    if (!producedBy(node.input(0), ...RESHAPE_LIKE)) return undefined;
    const x = chainInput(node.input(0) as Value);
    // A chain over a constant is constant folding's.
    if (isConstant(x)) return undefined;
    if (node.opType === 'Reshape') {
      const target = node.input(1);
      const s = constantNumbers(target);
      const allowZero = node.int('allowzero', 0) === 1;
      if (target && s && (allowZero || !s.includes(0))) return { node, x, target, allowZero };
    }
    const out = shapeOf(node.outputs[0]);
    if (!out) return undefined;
    const t = targetFromShapes(out, shapeOf(x), ctx.opset);
    return t ? { node, x, target: t.dims, allowZero: t.allowZero } : undefined;
  },
  apply({ node, x, target, allowZero }) {
    const g = node.graph;
    const shape = Array.isArray(target)
      ? addConstant(g, `${node.output().name}_shape`, Tensor.from('int64', [target.length], target))
      : target;
    const chain = node.input(0)?.producer;
    node.opType = 'Reshape';
    node.attrs.clear();
    if (allowZero) node.attrs.set('allowzero', { type: 'int', value: 1 });
    node.truncateInputs(0);
    node.setInput(0, x);
    node.setInput(1, shape);
    // Sweep the chain now so the next root in this round sees the shorter graph.
    for (let p = chain; p && p !== x.producer && RESHAPE_LIKE.includes(p.opType); ) {
      const up = p.input(0)?.producer;
      if (!removeIfDead(p)) break;
      p = up;
    }
  },
});
