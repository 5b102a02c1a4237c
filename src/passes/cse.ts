/**
 * Common-subexpression elimination: two nodes with the same op, the same inputs and the same
 * attributes compute the same values, so the later one's consumers read the earlier one's
 * outputs. Identical constants are merged first (exporters repeat small ones: axes, zeros),
 * which is what lets equal subexpressions over them be found.
 */
import type { Attribute } from '../ir/attributes.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { canReplace } from './match.js';
import { graphPass } from './pass.js';

/** Ops whose results differ between two runs with equal inputs. */
const NONDETERMINISTIC = new Set([
  'RandomNormal',
  'RandomUniform',
  'RandomNormalLike',
  'RandomUniformLike',
  'Bernoulli',
  'Multinomial',
  'Dropout',
]);

/** Constants up to this size are compared by content. */
const CONSTANT_KEY_LIMIT = 4096;

function tensorKey(t: Tensor): string | undefined {
  if (t.byteLength > CONSTANT_KEY_LIMIT) return undefined;
  const body = t.dtype === 'string' ? t.strings.join('\u0000') : String.fromCharCode(...t.bytes);
  return `${t.dtype}[${t.dims.join(',')}]${body}`;
}

function attributeKey(a: Attribute): string | undefined {
  switch (a.type) {
    case 'graph':
    case 'graphs':
    case 'sparse_tensor':
    case 'sparse_tensors':
      return undefined;
    case 'tensor':
      return tensorKey(a.value);
    case 'tensors': {
      const keys = a.value.map(tensorKey);
      return keys.some((k) => k === undefined) ? undefined : keys.join('|');
    }
    default:
      return JSON.stringify([a.type, a.value, a.refAttrName]);
  }
}

function nodeKey(n: Node, ids: Map<Value, number>): string | undefined {
  if (NONDETERMINISTIC.has(n.opType)) return undefined;
  const parts = [n.domain, n.opType, n.overload ?? ''];
  for (const v of n.inputs) parts.push(v ? String(ids.get(v) ?? `?${v.name}`) : '_');
  parts.push(String(n.outputs.length));
  for (const [name, a] of [...n.attrs].sort(([x], [y]) => x.localeCompare(y))) {
    const k = attributeKey(a);
    if (k === undefined) return undefined;
    parts.push(`${name}=${k}`);
  }
  return parts.join('\u0001');
}

/** Merges equal initializers; returns how many were merged away. */
function mergeConstants(g: Graph, ids: Map<Value, number>): number {
  const seen = new Map<string, Value>();
  let merged = 0;
  for (const v of [...g.initializers]) {
    if (!v.initializer || v.isGraphInput || v.isGraphOutput) continue;
    const key = tensorKey(v.initializer);
    if (key === undefined) continue;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, v);
      continue;
    }
    if (v.uses.length === 0) continue;
    g.replaceAllUses(v, first);
    merged++;
  }
  for (const v of g.initializers) if (!ids.has(v)) ids.set(v, ids.size);
  return merged;
}

export const cse = graphPass({
  name: 'cse',
  description: 'merges identical constants and nodes that compute the same thing from the same inputs',
  level: 'basic',
  run(g) {
    const ids = new Map<Value, number>();
    for (const v of g.inputs) ids.set(v, ids.size);
    let count = mergeConstants(g, ids);
    const seen = new Map<string, Node>();
    for (const n of [...g.nodes]) {
      if (n.removed) continue;
      const key = nodeKey(n, ids);
      const first = key === undefined ? undefined : seen.get(key);
      if (key !== undefined && first) {
        const pairs = n.outputs.map((v, i) => [v, first.outputs[i]] as const);
        if (pairs.every(([a, b]) => !a || (b && canReplace(a, b)))) {
          for (const [a, b] of pairs) if (a && b) g.replaceAllUses(a, b);
          if (n.outputs.every((v) => !v || (v.uses.length === 0 && !v.isGraphOutput))) g.removeNode(n);
          for (const v of first.outputs) if (v && !ids.has(v)) ids.set(v, ids.size);
          count++;
          continue;
        }
      }
      if (key !== undefined && !first) seen.set(key, n);
      for (const v of n.outputs) if (v && !ids.has(v)) ids.set(v, ids.size);
    }
    return count;
  },
});
