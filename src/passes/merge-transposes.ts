/**
 * Transpose(Transpose(x, p1), p2) is one Transpose of x by the composed permutation
 * (`c[i] = p1[p2[i]]`), and nothing at all when that is the identity. The outer node is rewritten
 * in place, so its output keeps its name; the inner one goes when nothing else reads it. When the
 * pair cancels but the outer output is a graph output that cannot take x's place (x is a graph
 * input, say), the outer node becomes an Identity, which is what keeps both names.
 * A Transpose of a constant is left to constant folding.
 */
import type { Node, Value } from '../ir/graph.js';
import { bypass, removeIfDead } from './edit.js';
import { canReplace, isConstant, producedBy } from './match.js';
import { pattern } from './pass.js';
import { composePerms, isIdentityPerm, transposePerm } from './perm.js';

interface Found {
  outer: Node;
  inner: Node;
  x: Value;
  perm: number[];
}

export const mergeTransposes = pattern<Found>({
  name: 'merge-transposes',
  description: 'merges a Transpose of a Transpose into one, or removes the pair when it cancels',
  level: 'basic',
  roots: ['Transpose'],
  match(outer) {
    const inner = producedBy(outer.input(0), 'Transpose');
    const x = inner?.input(0);
    if (!inner || !x || !outer.outputs[0] || isConstant(x)) return undefined;
    const p1 = transposePerm(inner);
    const p2 = transposePerm(outer);
    if (!p1 || !p2 || p1.length !== p2.length) return undefined;
    return { outer, inner, x, perm: composePerms(p1, p2) };
  },
  apply({ outer, inner, x, perm }) {
    if (isIdentityPerm(perm)) {
      if (canReplace(outer.output(), x)) {
        bypass(outer, x);
      } else {
        outer.opType = 'Identity';
        outer.attrs.clear();
        outer.setInput(0, x);
      }
    } else {
      outer.setInput(0, x);
      outer.attrs.set('perm', { type: 'ints', value: perm });
    }
    removeIfDead(inner);
  },
});
