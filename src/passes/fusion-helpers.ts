/**
 * Checks and edits shared by the pattern fusions (fuse-hardswish, fuse-gelu, fuse-layernorm,
 * fuse-relu-clip, fuse-activation): scalar constants that do not broadcast, constants equal
 * within float32 rounding, Clip's bounds in both of its spellings, and replacing a matched
 * subgraph by one new node.
 */
import type { Attribute } from '../ir/attributes.js';
import type { Node, Value } from '../ir/graph.js';
import { removeIfDead } from './edit.js';
import { constantValue, isConstant, rankOf } from './match.js';

/** The largest finite float32: Clip's default bounds before opset 11, and onnxruntime's "no bound". */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** The number held by a one-element constant, or undefined. */
export function singleNumber(v: Value | null | undefined): number | undefined {
  const t = constantValue(v);
  if (t?.size !== 1 || t.dtype === 'string') return undefined;
  try {
    return t.toNumbers()[0];
  } catch {
    return undefined;
  }
}

/**
 * The number held by a one-element constant that cannot raise the rank of `like` when
 * broadcast against it (a scalar, or all-ones dims of rank at most rank(like)).
 */
export function scalarConstant(v: Value | null | undefined, like: Value | null | undefined): number | undefined {
  const t = constantValue(v);
  if (t?.size !== 1) return undefined;
  if (t.rank > 0) {
    const r = rankOf(like);
    if (r === undefined || t.rank > r) return undefined;
  }
  return singleNumber(v);
}

/**
 * `a` equals `b` up to the rounding of a float32 constant written by an exporter (a few ulps,
 * also covering decimal forms such as 0.7978846 for √(2/π)).
 */
export function near(a: number | undefined, b: number, rel = 1e-6): boolean {
  if (a === undefined || !Number.isFinite(a)) return false;
  return Math.abs(a - b) <= rel * Math.abs(b);
}

/**
 * For a binary node with a one-element constant operand that does not broadcast the other:
 * the other operand and the number. Tries both sides when `commutative`.
 */
export function constantOperand(node: Node, commutative: boolean): { other: Value; value: number } | undefined {
  if (node.inputs.length !== 2) return undefined;
  for (const i of commutative ? [1, 0] : [1]) {
    const c = node.input(i);
    const other = node.input(1 - i);
    if (!other || !isConstant(c) || isConstant(other)) continue;
    const value = scalarConstant(c, other);
    if (value !== undefined) return { other, value };
  }
  return undefined;
}

/**
 * Clip's bounds when they are known: attributes `min`/`max` before opset 11 (defaults ±FLT_MAX),
 * optional constant inputs from 11 (absent means unbounded, reported as ±Infinity).
 */
export function clipBounds(clip: Node): { min: number; max: number } | undefined {
  if (clip.attr('min') !== undefined || clip.attr('max') !== undefined) {
    return { min: clip.float('min', -FLOAT32_MAX), max: clip.float('max', FLOAT32_MAX) };
  }
  const lo = clip.input(1);
  const hi = clip.input(2);
  const min = lo ? singleNumber(lo) : Number.NEGATIVE_INFINITY;
  const max = hi ? singleNumber(hi) : Number.POSITIVE_INFINITY;
  if (min === undefined || max === undefined || Number.isNaN(min) || Number.isNaN(max)) return undefined;
  return { min, max };
}

/**
 * Replaces `root`'s output by the output of a new node computed from `inputs`, placed before
 * `root`, then removes `root` and whichever of `matched` nobody reads any more. The new output
 * takes over the old output's name (and type), so a rewrite does not rename values.
 */
export function replaceByNode(
  root: Node,
  opType: string,
  inputs: ReadonlyArray<Value | null>,
  attrs: Array<[string, Attribute]>,
  matched: readonly Node[],
  domain = '',
): Node {
  const g = root.graph;
  const old = root.output();
  const name = old.name;
  const node = g.addNode(opType, inputs, [`${name}_fused`], { domain, name: root.name, attrs, before: root });
  const out = node.output();
  out.type = old.type;
  g.replaceAllUses(old, out);
  removeIfDead(root);
  // Producers before consumers in `matched` is not required: sweep until nothing more goes.
  let pending = matched.filter((n) => n !== root && !n.removed);
  for (let progress = true; progress && pending.length > 0; ) {
    progress = false;
    for (const n of pending) if (!n.removed && removeIfDead(n)) progress = true;
    pending = pending.filter((n) => !n.removed);
  }
  if (out.name !== name && !g.hasName(name)) g.renameValue(out, name);
  return node;
}
