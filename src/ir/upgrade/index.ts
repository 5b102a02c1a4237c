/**
 * Opset upgrades for the default ONNX domain ('' / 'ai.onnx'). Every node, subgraphs and model
 * functions included, is carried from the model's operator set version to a newer one, one op
 * change at a time: the table ADAPTERS holds one rewrite per (op, version) whose definition
 * changed in a way the older node does not already satisfy. A version step with no entry is a
 * change a node needs nothing for (new types, new attributes whose defaults keep the old
 * behaviour, spec clarifications): the node just moves.
 *
 * An adapter rewrites its node into the op's form at the step's version. Helper nodes it adds
 * (a Flatten before a Softmax, an Unsqueeze for an old axis-broadcast, a second Resize) are
 * written in their form at that same version and then upgraded like any other node, so each
 * adapter only knows two adjacent versions. Constants become initializers.
 *
 * When a node cannot be carried over exactly (an op removed with no equivalent, a rank the
 * rewrite needs but cannot know), upgradeOpset throws a MobilizeError naming the node, the op and
 * the versions. Unknown ops are found before anything is changed; a refusal found later leaves
 * the model partly rewritten, so callers discard it.
 *
 * Facts follow the ONNX operator changelog (docs/Changelog.md of onnx/onnx).
 *
 * This module is the driver (upgradeOpset and the Upgrader that walks the graphs). The rest of
 * the folder: history.ts (which versions each op has), context.ts (the Step an adapter rewrites
 * through), adapters.ts (the tables the driver looks adapters up in), adapters-attrs.ts and
 * adapters-semantics.ts (the adapters).
 */
import { badInput } from '../../errors.js';
import { inferShapes } from '../../ops/infer.js';
import { irVersionForOpset } from '../builder.js';
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from '../graph.js';
import type { Tensor } from '../tensor.js';
import type { ValueType } from '../types.js';
import { ADAPTERS, EXPERIMENTAL, EXPERIMENTAL_REFUSED } from './adapters.js';
import { type Adapter, Step } from './context.js';
import { HISTORY, versionAt } from './history.js';

/** Lowest and highest opsets upgradeOpset can target (onnxruntime runs nothing below 7). */
export const MIN_TARGET_OPSET = 7;
export const MAX_TARGET_OPSET = 21;

export interface UpgradeReport {
  /** The model's default-domain opset before, and the one it has now. */
  from: number;
  to: number;
  /** Default-domain nodes visited (subgraphs and functions included), not counting added ones. */
  nodes: number;
  /** Rewrites applied, keyed `Op@version` (the version the node moved to), with node counts. */
  adapted: Record<string, number>;
  /** Nodes the rewrites added (Flatten/Reshape around a Softmax, an Unsqueeze for a broadcast, …). */
  addedNodes: number;
  /** Constants the rewrites added as initializers (attributes that became inputs, reshaped weights); function bodies get Constant nodes, counted as added nodes. */
  addedInitializers: number;
}

// ---------------------------------------------------------------- the driver

/** One upgrade run: the report, the types inferred for the model, and the walk over its graphs. Steps read types and add initializers through it. */
export class Upgrader {
  readonly report: UpgradeReport;
  private readonly types = new Map<Value, ValueType>();

  constructor(
    readonly from: number,
    readonly target: number,
  ) {
    this.report = { from, to: target, nodes: 0, adapted: {}, addedNodes: 0, addedInitializers: 0 };
  }

  typeOf(v: Value): ValueType | undefined {
    return this.types.get(v) ?? v.type;
  }

  addInitializer(g: Graph, base: string, t: Tensor): Value {
    this.report.addedInitializers++;
    return g.addInitializer(base, t);
  }

  /** Roots of model function bodies, which hold no initializers. */
  readonly functionBodies = new Set<Graph>();

  inFunction(g: Graph): boolean {
    return this.functionBodies.has(g.root);
  }

  /** Types inferred for the whole model, kept on the side: the model's own value types are left as they were. */
  learnTypes(model: Model): void {
    const saved = new Map<Value, ValueType | undefined>();
    const visit = (g: Graph): void => {
      for (const v of [...g.inputs, ...g.initializers]) saved.set(v, v.type);
      for (const n of g.nodes) {
        for (const v of n.outputs) if (v) saved.set(v, v.type);
        for (const sg of n.subgraphs()) visit(sg);
      }
    };
    visit(model.graph);
    try {
      inferShapes(model);
    } catch {
      // Best effort: adapters that need a type refuse when it is unknown.
    }
    for (const [v, t] of saved) {
      if (v.type) this.types.set(v, v.type);
      v.type = t;
    }
  }

  /** Checks every default-domain node's op exists at `opset` before anything is rewritten. */
  check(g: Graph, opset: number): void {
    for (const n of g.allNodes()) {
      if (!isOnnxDomain(n.domain)) continue;
      if (versionAt(n.opType, opset) !== undefined) continue;
      const refuse = (why: string): never => {
        throw badInput(`cannot upgrade ${n.describe()} from opset ${this.from} to ${this.target}: ${why}`);
      };
      const end = EXPERIMENTAL_REFUSED.get(n.opType);
      if (end !== undefined && opset < end) {
        if (this.target < end) continue;
        refuse(`${n.opType} was an experimental op with no equivalent in the standard set at opset ${end}`);
      }
      if (opset < 10 && EXPERIMENTAL.has(n.opType)) continue;
      const since = HISTORY.get(n.opType)?.[0];
      if (since !== undefined) refuse(`${n.opType} does not exist at opset ${opset} (it was introduced at ${since})`);
      refuse(`${n.opType} is not an operator of the default ONNX domain`);
    }
  }

  graph(g: Graph, opset: number): void {
    for (const node of [...g.nodes]) {
      for (const sg of node.subgraphs()) this.graph(sg, opset);
      if (!isOnnxDomain(node.domain)) continue;
      this.report.nodes++;
      this.node(node, opset);
    }
  }

  /** Moves one node (written for `opset`) through every version step up to the target. */
  private node(node: Node, opset: number): void {
    let at = opset;
    if (versionAt(node.opType, opset) === undefined) {
      // An experimental op (checked to be convertible); it becomes standard at opset 10.
      const adapter = EXPERIMENTAL.get(node.opType);
      if (!adapter || this.target < 10) return;
      this.apply(adapter, node, at, 10, `${node.opType}@10`);
      at = 10;
    }
    for (;;) {
      if (node.removed) return;
      const op = node.opType;
      const next = HISTORY.get(op)?.find((v) => v > at && v <= this.target);
      if (next === undefined) return;
      const adapter = ADAPTERS.get(`${op}@${next}`);
      if (adapter) this.apply(adapter, node, at, next, `${op}@${next}`);
      at = next;
    }
  }

  private apply(adapter: Adapter, node: Node, at: number, version: number, key: string): void {
    const step = new Step(this, node, at, version);
    // Inside a function body an attribute may stand for the caller's: its value is not known here.
    const ref = [...node.attrs].find(([, a]) => a.refAttrName !== undefined);
    if (ref) step.refuse(`attribute "${ref[0]}" refers to the function's attribute "${ref[1].refAttrName}", so it cannot be rewritten`);
    const before = signature(node);
    adapter(step);
    if (step.created.length === 0 && !node.removed && signature(node) === before) return;
    this.report.adapted[key] = (this.report.adapted[key] ?? 0) + 1;
    this.report.addedNodes += step.created.length;
    for (const n of step.created) this.node(n, version);
  }
}

/**
 * Rewrites the default-domain nodes of `model` (subgraphs and model functions included) from its
 * opset to `target`, then sets its default opset import to `target` and its IR version to at
 * least the one that opset needs. Refuses (MobilizeError) targets outside 7…21, downgrades, and
 * nodes with no exact equivalent at the target.
 */
export function upgradeOpset(model: Model, target: number): UpgradeReport {
  if (!Number.isInteger(target) || target < MIN_TARGET_OPSET || target > MAX_TARGET_OPSET) {
    throw badInput(`cannot upgrade to opset ${target}: targets from ${MIN_TARGET_OPSET} to ${MAX_TARGET_OPSET} are supported`);
  }
  const hasOnnxNodes = (g: Graph): boolean => [...g.allNodes()].some((n) => isOnnxDomain(n.domain));
  const declared = model.opset('');
  if (declared === undefined && hasOnnxNodes(model.graph)) {
    throw badInput('cannot upgrade the model: it uses default-domain ops but imports no version of the default ONNX operator set');
  }
  const from = declared ?? target;
  if (from > target) {
    throw badInput(`cannot upgrade the model to opset ${target}: it is at opset ${from}, and downgrading is not supported`);
  }
  const up = new Upgrader(from, target);
  for (const f of model.functions) up.functionBodies.add(f.body);
  up.check(model.graph, from);
  const functions = model.functions.map((f) => ({ f, opset: f.opsetImports.get('') ?? f.opsetImports.get('ai.onnx') }));
  for (const { f, opset } of functions) {
    if (opset === undefined) continue;
    if (opset > target) {
      throw badInput(`cannot upgrade function ${f.name} to opset ${target}: it is at opset ${opset}, and downgrading is not supported`);
    }
    up.check(f.body, opset);
  }
  if (from < target) {
    up.learnTypes(model);
    up.graph(model.graph, from);
  }
  for (const { f, opset } of functions) {
    if (opset === undefined || opset === target) continue;
    up.graph(f.body, opset);
    setDefaultOpset(f.opsetImports, target);
  }
  setDefaultOpset(model.opsetImports, target);
  let ir = Math.max(model.irVersion, irVersionForOpset(target));
  // IR 3 lists every initializer among the graph inputs; added constants are plain initializers.
  if (up.report.addedInitializers > 0 && ir < 4) ir = 4;
  model.irVersion = ir;
  return up.report;
}

const objectIds = new WeakMap<object, number>();
let nextObjectId = 0;

/** What a node reads, writes and is told, as a string: equal before and after an adapter that changed nothing. */
function signature(n: Node): string {
  const show = (v: unknown): string => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return JSON.stringify(v);
    let i = objectIds.get(v);
    if (i === undefined) {
      i = ++nextObjectId;
      objectIds.set(v, i);
    }
    return `#${i}`;
  };
  const attrs = [...n.attrs].map(([k, a]) => `${k}=${a.type}:${show(a.value)}`);
  return [n.opType, ...n.inputs.map((v) => v?.name ?? ''), '>', ...n.outputs.map((v) => v?.name ?? ''), '|', ...attrs].join(' ');
}

function setDefaultOpset(imports: Map<string, number>, version: number): void {
  if (!imports.has('') && imports.has('ai.onnx')) imports.set('ai.onnx', version);
  else imports.set('', version);
}
