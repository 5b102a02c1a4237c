/**
 * What a graph rewrite is. Most passes are local patterns: they name the op types they start
 * from (`roots`), `match` a small neighbourhood with cheap checks first and return what they
 * found (or nothing), and `apply` the rewrite. Whole-graph passes (dead code, CSE, folding)
 * implement `run` instead. Either way a pass reports how many rewrites it made, so the driver
 * knows when the pipeline has reached a fixed point.
 */
import type { Graph, Model, Node, Value } from '../ir/graph.js';
import type { Dim } from '../ir/types.js';
import type { OpRegistry } from '../ops/registry.js';

export type Level = 'basic' | 'all';

export interface OptimizeOptions {
  /** basic: standard-op rewrites any runtime runs; all: also fusions into onnxruntime's contrib ops. */
  level?: Level;
  /** Largest folded constant, in bytes, beyond the size of the constants it replaces. */
  foldLimit?: number;
  /** Passes to skip, by name. */
  disable?: readonly string[];
  /** Check the graph after every pass (tests turn this on). */
  verifyEachPass?: boolean;
  /** The passes to run instead of the standard pipeline (tests, experiments). */
  passes?: readonly Pass[];
  /** Called after each pass that rewrote something (used to find the pass that broke a model). */
  afterPass?: (pass: string, model: Model) => void;
}

export interface PassContext {
  readonly model: Model;
  readonly registry: OpRegistry;
  readonly options: Required<Pick<OptimizeOptions, 'level' | 'foldLimit'>>;
  /** Version of the default ONNX opset the model imports. */
  readonly opset: number;
  /** Elements of small integer tensors known from this round's shape inference (see inferShapes). */
  shapeValues: ReadonlyMap<Value, Dim[]>;
}

interface PassBase {
  name: string;
  /** One line: what it does, for `--help` and the report. */
  description: string;
  /** Lowest level at which the pass runs. */
  level: Level;
}

/** A local rewrite: find `T` around a root node, then rewrite it. */
export interface PatternPass<T = unknown> extends PassBase {
  kind: 'pattern';
  /** Op types (default ONNX domain) a match starts from. */
  roots: readonly string[];
  /** Cheap checks first; undefined when the pattern does not apply here. */
  match(node: Node, ctx: PassContext): T | undefined;
  apply(found: T, ctx: PassContext): void;
}

/** A pass over a whole graph; returns the number of rewrites it made. */
export interface GraphPass extends PassBase {
  kind: 'graph';
  run(graph: Graph, ctx: PassContext): number;
}

export type Pass = PatternPass<never> | GraphPass;

/** Declares a pattern pass (keeps `T` checked between `match` and `apply`). */
export function pattern<T>(p: Omit<PatternPass<T>, 'kind'>): Pass {
  return { kind: 'pattern', ...p } as unknown as Pass;
}

export function graphPass(p: Omit<GraphPass, 'kind'>): Pass {
  return { kind: 'graph', ...p };
}
