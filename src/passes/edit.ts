/** Graph edits shared by the passes. */
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';

/** Replaces `node`'s output `out` by `by` everywhere, then removes the node if nothing else of it is read. */
export function bypass(node: Node, by: Value, out = 0): void {
  const g = node.graph;
  g.replaceAllUses(node.output(out), by);
  removeIfDead(node);
}

/** Removes a node whose outputs nobody reads. Returns whether it was removed. */
export function removeIfDead(node: Node): boolean {
  if (node.outputs.some((v) => v && (v.uses.length > 0 || v.isGraphOutput))) return false;
  node.graph.removeNode(node);
  return true;
}

/** Replaces a node by constants: its outputs become initializers with the given values. */
export function foldToConstants(node: Node, values: readonly Tensor[]): void {
  const g = node.graph;
  const outs = node.outputs;
  g.detachNode(node);
  outs.forEach((v, i) => {
    if (v && values[i]) g.makeInitializer(v, values[i]);
  });
}

/** A new initializer in `g`, named after `base`. */
export function addConstant(g: Graph, base: string, tensor: Tensor): Value {
  return g.addInitializer(g.freshName(base), tensor);
}
