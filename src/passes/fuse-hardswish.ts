/**
 * HardSwish (opset 14) spelled out, back to one node. HardSwish(x) = x · max(0, min(1, x/6 + ½))
 * = x · Clip(x + 3, 0, 6) / 6, and exporters write it as:
 * - x · HardSigmoid(x) with alpha = 1/6 (within float32 rounding) and beta = ½;
 * - x · (Clip(x + 3, 0, 6) / 6) or x · (Clip(x + 3, 0, 6) · (1/6)), in either operand order;
 * - (x · Clip(x + 3, 0, 6)) / 6 or · (1/6) (PyTorch's and Paddle's exports; Relu6 is that Clip).
 * The same x must feed both sides, and every intermediate must be read only inside the pattern.
 * float32 only: a runtime that ran the spelled-out float16 graph may lack a float16 HardSwish.
 */
import type { Node, Value } from '../ir/graph.js';
import { clipBounds, constantOperand, near, replaceByNode } from './fusion-helpers.js';
import { dtypeOf, hasOneUse, producedBy } from './match.js';
import { pattern } from './pass.js';

interface Found {
  root: Node;
  x: Value;
  matched: Node[];
}

interface Part {
  x: Value;
  nodes: Node[];
}

/** Clip(x + 3, 0, 6), each node read once. */
function relu6Plus3(v: Value | null): Part | undefined {
  const clip = producedBy(v, 'Clip');
  if (!clip || !hasOneUse(v)) return undefined;
  const add = producedBy(clip.input(0), 'Add');
  if (!add || !hasOneUse(add.output())) return undefined;
  const c = constantOperand(add, true);
  if (c?.value !== 3) return undefined;
  const b = clipBounds(clip);
  if (b?.min !== 0 || b.max !== 6) return undefined;
  return { x: c.other, nodes: [clip, add] };
}

/** `v` divided by 6 or multiplied by 1/6: the other operand. */
function sixth(n: Node): Value | undefined {
  const c = constantOperand(n, n.opType === 'Mul');
  if (!c) return undefined;
  return (n.opType === 'Div' ? c.value === 6 : near(c.value, 1 / 6)) ? c.other : undefined;
}

/** The hard-sigmoid gate: HardSigmoid(x; 1/6, ½), or Clip(x + 3, 0, 6) / 6. */
function gate(v: Value | null): Part | undefined {
  const n = producedBy(v, 'HardSigmoid', 'Div', 'Mul');
  if (!n || !hasOneUse(v)) return undefined;
  if (n.opType === 'HardSigmoid') {
    const x = n.input(0);
    if (!x || !near(n.float('alpha', 0.2), 1 / 6) || n.float('beta', 0.5) !== 0.5) return undefined;
    return { x, nodes: [n] };
  }
  const inner = sixth(n);
  const r = inner && relu6Plus3(inner);
  return r && { x: r.x, nodes: [n, ...r.nodes] };
}

export const fuseHardswish = pattern<Found>({
  name: 'fuse-hardswish',
  description: 'x·HardSigmoid(x) and x·Clip(x+3,0,6)/6 → HardSwish (opset ≥ 14)',
  level: 'basic',
  roots: ['Mul', 'Div'],
  match(root, ctx) {
    if (ctx.opset < 14 || root.inputs.length !== 2 || !root.outputs[0]) return undefined;
    if (dtypeOf(root.outputs[0]) !== 'float32') return undefined;
    if (root.opType === 'Mul') {
      // x · gate(x)
      for (const i of [0, 1]) {
        const x = root.input(1 - i);
        const g = x ? gate(root.input(i)) : undefined;
        if (g && g.x === x) return { root, x, matched: g.nodes };
      }
    }
    // (x · Clip(x + 3, 0, 6)) / 6
    const scaled = sixth(root);
    const prod = producedBy(scaled, 'Mul');
    if (!prod || !hasOneUse(scaled)) return undefined;
    for (const i of [0, 1]) {
      const x = prod.input(1 - i);
      const r = x ? relu6Plus3(prod.input(i)) : undefined;
      if (r && r.x === x) return { root, x, matched: [prod, ...r.nodes] };
    }
    return undefined;
  },
  apply({ root, x, matched }) {
    replaceByNode(root, 'HardSwish', [x], [], matched);
  },
});
