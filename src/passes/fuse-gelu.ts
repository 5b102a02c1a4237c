/**
 * Gelu (opset 20) spelled out, back to one node:
 * - exact: x · ½ · (1 + Erf(x/√2)), with x/√2 written as Div(x, √2) or Mul(x, 1/√2);
 * - tanh approximation: x · ½ · (1 + Tanh(√(2/π) · (x + 0.044715 · x³))), with x³ written as
 *   Pow(x, 3) or x·(x·x) → Gelu(approximate="tanh").
 * The three factors x, ½ and (1 + …) may be multiplied in any order and grouping (PyTorch:
 * (x·(1+…))·½; BERT exports: (x·½)·(1+…); others: x·(½·(1+…))). Constants must match within
 * float32 rounding; every intermediate must be read only inside the pattern. float32 only.
 */
import type { Attribute } from '../ir/attributes.js';
import type { Node, Value } from '../ir/graph.js';
import { constantOperand, near, replaceByNode, scalarConstant } from './fusion-helpers.js';
import { dtypeOf, hasOneUse, isConstant, producedBy } from './match.js';
import { pattern } from './pass.js';

interface Found {
  root: Node;
  x: Value;
  approximate: boolean;
  matched: Node[];
}

/** The node producing `v` when it is `op` and `v` is read once. */
function single(v: Value | null | undefined, op: string): Node | undefined {
  const n = producedBy(v, op);
  return n && hasOneUse(v) ? n : undefined;
}

/** 1 + f(u) for the unary `op`: the node f and the nodes of the sum. */
function onePlus(v: Value, op: string): { u: Value; nodes: Node[] } | undefined {
  const add = single(v, 'Add');
  const c = add && constantOperand(add, true);
  const f = c && single(c.other, op);
  const u = f?.input(0);
  if (!add || !c || !f || !u || c.value !== 1) return undefined;
  return { u, nodes: [add, f] };
}

/** 1 + Erf(x/√2): the nodes, when the argument is x scaled by 1/√2. */
function erfBranch(a: Value, x: Value): Node[] | undefined {
  const sum = onePlus(a, 'Erf');
  const scale = sum && (single(sum.u, 'Div') ?? single(sum.u, 'Mul'));
  const c = scale && constantOperand(scale, scale.opType === 'Mul');
  if (!sum || !scale || !c || c.other !== x) return undefined;
  const ok = scale.opType === 'Div' ? near(c.value, Math.SQRT2) : near(c.value, Math.SQRT1_2);
  return ok ? [...sum.nodes, scale] : undefined;
}

/** x³ as Pow(x, 3), x·(x·x) or (x·x)·x: its nodes. */
function cube(v: Value, x: Value): Node[] | undefined {
  const pow = single(v, 'Pow');
  if (pow) return pow.input(0) === x && scalarConstant(pow.input(1), x) === 3 ? [pow] : undefined;
  const m = single(v, 'Mul');
  if (!m) return undefined;
  for (const i of [0, 1]) {
    const sq = single(m.input(i), 'Mul');
    if (m.input(1 - i) === x && sq && sq.input(0) === x && sq.input(1) === x) return [m, sq];
  }
  return undefined;
}

/** 1 + Tanh(√(2/π) · (x + 0.044715 · x³)): the nodes. */
function tanhBranch(a: Value, x: Value): Node[] | undefined {
  const sum = onePlus(a, 'Tanh');
  const scale = sum && single(sum.u, 'Mul');
  const k = scale && constantOperand(scale, true);
  const inner = k && single(k.other, 'Add');
  if (!sum || !scale || !k || !inner || inner.inputs.length !== 2) return undefined;
  for (const i of [0, 1]) {
    const t = inner.input(1 - i) === x ? single(inner.input(i), 'Mul') : undefined;
    const c = t && constantOperand(t, true);
    const cubed = c && cube(c.other, x);
    if (!t || !c || !cubed) continue;
    if (near(k.value, Math.sqrt(2 / Math.PI)) && near(c.value, 0.044715)) return [...sum.nodes, scale, inner, t, ...cubed];
  }
  return undefined;
}

/** Ways to read `root` = Mul as a product of three factors, with the inner Mul it took. */
function threeFactors(root: Node): Array<{ factors: Value[]; inner: Node }> {
  const out: Array<{ factors: Value[]; inner: Node }> = [];
  for (const i of [0, 1]) {
    const inner = single(root.input(i), 'Mul');
    const other = root.input(1 - i);
    const a = inner?.input(0);
    const b = inner?.input(1);
    if (inner && other && a && b) out.push({ factors: [a, b, other], inner });
  }
  return out;
}

export const fuseGelu = pattern<Found>({
  name: 'fuse-gelu',
  description: 'x·½·(1+Erf(x/√2)) and its tanh approximation → Gelu (opset ≥ 20)',
  level: 'basic',
  roots: ['Mul'],
  match(root, ctx) {
    if (ctx.opset < 20 || root.inputs.length !== 2 || !root.outputs[0]) return undefined;
    if (dtypeOf(root.outputs[0]) !== 'float32') return undefined;
    for (const { factors, inner } of threeFactors(root)) {
      const h = factors.findIndex((f) => isConstant(f));
      if (h < 0) continue;
      const [p, q] = factors.filter((_, i) => i !== h);
      for (const [x, a] of [
        [p, q],
        [q, p],
      ]) {
        if (isConstant(x) || !producedBy(a, 'Add') || scalarConstant(factors[h], x) !== 0.5) continue;
        const erf = erfBranch(a, x);
        if (erf) return { root, x, approximate: false, matched: [inner, ...erf] };
        const tanh = tanhBranch(a, x);
        if (tanh) return { root, x, approximate: true, matched: [inner, ...tanh] };
      }
    }
    return undefined;
  },
  apply({ root, x, approximate, matched }) {
    const attrs: Array<[string, Attribute]> = approximate ? [['approximate', { type: 'string', value: 'tanh' }]] : [];
    replaceByNode(root, 'Gelu', [x], attrs, matched);
  },
});
