/**
 * Structural checks of a model: single assignment, definitions before uses (topological order,
 * no cycles), no dangling references, use lists that match the nodes, constants whose data
 * matches their declared type, attributes of the types the op expects, and imported opsets for
 * every domain used. Run after every pass in tests; the CLI runs it before handing a model to
 * a runtime.
 */
import { badInput } from '../errors.js';
import type { OpRegistry } from '../ops/registry.js';
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from './graph.js';
import { formatType } from './types.js';

export interface VerifyIssue {
  /** Where: a node description, or "graph"/"model". */
  where: string;
  message: string;
}

export interface VerifyOptions {
  /** Checks attribute types against op schemas when given. */
  registry?: OpRegistry;
}

export function verifyModel(model: Model, options: VerifyOptions = {}): VerifyIssue[] {
  const issues: VerifyIssue[] = [];
  const add = (where: string, message: string): void => {
    issues.push({ where, message });
  };
  if (model.opset('') === undefined && [...model.graph.allNodes()].some((n) => isOnnxDomain(n.domain))) {
    add('model', 'the model imports no version of the default ONNX operator set');
  }
  for (const n of model.graph.allNodes()) {
    if (!isOnnxDomain(n.domain) && model.opset(n.domain) === undefined && !model.functions.some((f) => f.domain === n.domain)) {
      add(n.describe(), `uses domain "${n.domain}", which the model does not import`);
    }
  }
  checkGraph(model.graph, new Set(), issues, options, true);
  for (const f of model.functions) checkGraph(f.body, new Set(), issues, options, false);
  return issues;
}

/** Throws a MobilizeError (exit 2) describing the first problem when the model is not valid. */
export function assertValid(model: Model, source = 'model', options: VerifyOptions = {}): void {
  const issues = verifyModel(model, options);
  if (issues.length === 0) return;
  const first = issues[0];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  throw badInput(`${source}: invalid model: ${first.where}: ${first.message}${more}`);
}

function checkGraph(g: Graph, outer: Set<Value>, issues: VerifyIssue[], options: VerifyOptions, topLevel: boolean): void {
  const add = (where: string, message: string): void => {
    issues.push({ where, message });
  };
  const label = topLevel ? 'graph' : `subgraph "${g.name}"`;
  const defined = new Set<Value>(outer);
  const names = new Map<string, Value>();
  const define = (v: Value, what: string): void => {
    if (defined.has(v) && !outer.has(v)) add(label, `value "${v.name}" is defined twice (again as ${what})`);
    const other = names.get(v.name);
    if (other && other !== v) add(label, `two different values are named "${v.name}"`);
    names.set(v.name, v);
    defined.add(v);
  };
  for (const v of g.inputs) {
    define(v, 'a graph input');
    if (topLevel && !v.type) add(label, `input "${v.name}" has no type`);
  }
  for (const v of g.initializers) {
    if (!g.inputs.includes(v)) define(v, 'an initializer');
    const t = v.initializer;
    const vt = v.type;
    if (t && vt && vt.kind === 'tensor') {
      if (vt.dtype && vt.dtype !== t.dtype) add(label, `initializer "${v.name}" holds ${t.dtype} data but is declared ${formatType(vt)}`);
      if (vt.shape && (vt.shape.length !== t.rank || vt.shape.some((d, i) => typeof d === 'number' && d !== t.dims[i]))) {
        add(label, `initializer "${v.name}" has shape [${t.dims.join(',')}] but is declared ${formatType(vt)}`);
      }
    }
  }
  for (const node of g.nodes) {
    const where = node.describe();
    if (node.graph !== g) add(where, `is listed in ${label} but belongs to another graph`);
    node.inputs.forEach((v, i) => {
      if (!v) return;
      if (!defined.has(v)) {
        const later = v.producer !== undefined && isAncestorOrSelf(v.producer.graph, g);
        add(
          where,
          later ? `reads "${v.name}" before it is computed (nodes out of order, or a cycle)` : `reads "${v.name}", which nothing defines`,
        );
      }
      if (!v.uses.some((u) => u.node === node && u.index === i))
        add(where, `input ${i} ("${v.name}") is missing from that value's use list`);
    });
    if (!options.registry) {
      // attribute checks need the op table
    } else {
      checkAttributes(node, options.registry, add);
    }
    for (const sg of node.subgraphs()) checkGraph(sg, new Set(defined), issues, options, false);
    node.outputs.forEach((v) => {
      if (!v) return;
      if (v.producer !== node) add(where, `output "${v.name}" names a different producer`);
      define(v, `an output of ${where}`);
    });
  }
  for (const v of g.outputs) {
    if (!defined.has(v)) add(label, `output "${v.name}" is not defined by any node, input or initializer`);
    if (topLevel && !v.type) add(label, `output "${v.name}" has no type`);
  }
  // Use lists must not point at nodes that no longer read the value.
  for (const v of defined) {
    if (outer.has(v)) continue;
    for (const u of v.uses) {
      if (u.node.inputs[u.index] !== v) add(label, `value "${v.name}" lists a use by ${u.node.describe()} that does not read it`);
    }
  }
}

function checkAttributes(node: Node, registry: OpRegistry, add: (where: string, message: string) => void): void {
  const schema = registry.get(node.domain, node.opType);
  if (!schema?.attrs) return;
  for (const [name, a] of node.attrs) {
    const want = schema.attrs[name];
    if (!want || a.refAttrName !== undefined) continue;
    if (a.type !== want) add(node.describe(), `attribute "${name}" is ${a.type}, but ${node.opType} takes ${want}`);
  }
}

function isAncestorOrSelf(a: Graph, g: Graph): boolean {
  for (let cur: Graph | undefined = g; cur; cur = cur.parent) if (cur === a) return true;
  return false;
}
