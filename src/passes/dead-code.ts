/**
 * Dead-code elimination: nodes none of whose outputs is read, and initializers nobody reads.
 * Nodes of domains mobilize does not know are kept even when unread: an unknown op may matter in
 * ways we cannot see, and we never drop what we do not understand.
 */
import { isOnnxDomain } from '../ir/graph.js';
import { graphPass } from './pass.js';

const KNOWN_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml']);

export const deadCode = graphPass({
  name: 'dead-code',
  description: 'removes nodes and initializers whose values nobody reads',
  level: 'basic',
  run(g) {
    let count = 0;
    for (let i = g.nodes.length - 1; i >= 0; i--) {
      const n = g.nodes[i];
      if (!KNOWN_DOMAINS.has(n.domain) && !isOnnxDomain(n.domain)) continue;
      if (n.outputs.some((v) => v && (v.uses.length > 0 || v.isGraphOutput))) continue;
      g.removeNode(n);
      count++;
    }
    return count + g.removeUnusedInitializers();
  },
});
