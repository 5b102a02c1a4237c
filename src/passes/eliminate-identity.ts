/**
 * Identity and inference-mode Dropout pass their input through unchanged: their consumers read
 * the input directly. A graph output keeps its name (see Graph.replaceAllUses).
 */
import type { Node, Value } from '../ir/graph.js';
import { bypass } from './edit.js';
import { canReplace, isConstantAll, isUnused } from './match.js';
import { pattern } from './pass.js';

export const eliminateIdentity = pattern<Node>({
  name: 'eliminate-identity',
  description: 'removes Identity, and Dropout that is not training',
  level: 'basic',
  roots: ['Identity', 'Dropout'],
  match(n) {
    const x = n.input(0);
    if (!x || !n.outputs[0]) return undefined;
    // Identity of a sequence or optional is still a pass-through; only tensors matter below.
    if (n.opType === 'Dropout') {
      // Training mode (opset 12+: input 2) must be a constant false; the mask output must be unread.
      if (n.input(2) && !isConstantAll(n.input(2), 0)) return undefined;
      if (!isUnused(n.outputs[1])) return undefined;
      if (n.int('is_test', 1) === 0 && n.attrs.has('is_test')) return undefined;
    }
    // An Identity between a graph input (or constant) and a graph output is what keeps both names.
    if (!canReplace(n.output(), x)) return undefined;
    return n;
  },
  apply(n) {
    bypass(n, n.input(0) as Value);
  },
});
