/**
 * Shape and type inference over a model: each node's rule (src/ops/*) runs in topological
 * order, subgraphs included. Small integer tensors carry their (possibly symbolic) elements
 * forward, so Shape → Gather → Concat → Reshape chains keep `N` as `N`; nodes whose inputs are
 * all small constants are evaluated with the reference kernels. Types the file declared are
 * merged with what is inferred: a declared symbol survives, an unknown dim gets filled in, and
 * a contradiction is reported against the node.
 */
import { badInput } from '../errors.js';
import type { DType } from '../ir/dtype.js';
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { type Dim, formatShape, formatType, type Shape, type TensorType, type ValueType } from '../ir/types.js';
import { constantOf } from './constants.js';
import { defaultRegistry } from './index.js';
import type { OpRegistry } from './registry.js';
import type { InferContext, KernelContext } from './schema.js';

export interface InferOptions {
  /** Fixed shapes for graph inputs (`--input-shape`); symbols they bind are replaced everywhere. */
  inputShapes?: Readonly<Record<string, Shape>>;
  registry?: OpRegistry;
  /** Throw on the first problem instead of collecting them. */
  strict?: boolean;
}

export interface InferProblem {
  node: string;
  message: string;
}

export interface InferReport {
  /** Op types with no shape rule, with how many nodes use them. */
  unknownOps: Map<string, number>;
  problems: InferProblem[];
  /** Elements of small integer tensors worked out during inference (Shape outputs and their arithmetic). */
  shapeValues: Map<Value, Dim[]>;
}

/** Largest constant (elements) computed during inference. */
const FOLD_LIMIT = 4096;

export class InferError extends Error {}

export function inferShapes(model: Model, options: InferOptions = {}): InferReport {
  const engine = new Engine(model, options.registry ?? defaultRegistry(), options.strict ?? false);
  if (options.inputShapes) applyInputShapes(model.graph, options.inputShapes);
  engine.graph(model.graph);
  return engine.report;
}

/** Fixes graph input shapes; checks names and ranks against the model. */
export function applyInputShapes(g: Graph, shapes: Readonly<Record<string, Shape>>): void {
  for (const [name, shape] of Object.entries(shapes)) {
    const v = g.inputs.find((i) => i.name === name);
    if (!v) {
      const names = g.inputs.filter((i) => !i.initializer).map((i) => i.name);
      throw badInput(`--input-shape names "${name}", but the model's inputs are: ${names.join(', ')}`);
    }
    const t = v.type;
    if (t && t.kind !== 'tensor') throw badInput(`--input-shape: input "${name}" is a ${t.kind}, not a tensor`);
    const declared = t?.shape;
    if (declared) {
      if (declared.length !== shape.length) {
        throw badInput(
          `--input-shape ${name}:${shape.join('x')} has rank ${shape.length}, but the model declares ${formatShape(declared)} (rank ${declared.length})`,
        );
      }
      declared.forEach((d, i) => {
        if (typeof d === 'number' && typeof shape[i] === 'number' && d !== shape[i]) {
          throw badInput(`--input-shape ${name}:${shape.join('x')}: dim ${i} is fixed to ${d} by the model`);
        }
      });
    }
    v.type = { kind: 'tensor', dtype: t?.dtype, shape: [...shape] };
  }
}

function mergeDim(declared: Dim, inferred: Dim): Dim | 'conflict' {
  if (typeof declared === 'number' && typeof inferred === 'number') return declared === inferred ? declared : 'conflict';
  if (typeof inferred === 'number') return inferred;
  if (typeof declared === 'number') return declared;
  return declared ?? inferred;
}

/** Merges an inferred type into a declared one; a string describes a contradiction. */
export function mergeTypes(declared: ValueType | undefined, inferred: ValueType): ValueType | string {
  if (!declared) return inferred;
  if (declared.kind !== inferred.kind) return `declared ${formatType(declared)}, inferred ${formatType(inferred)}`;
  if (declared.kind !== 'tensor' && declared.kind !== 'sparse_tensor') return declared;
  const inf = inferred as TensorType;
  if (declared.dtype && inf.dtype && declared.dtype !== inf.dtype) return `declared ${formatType(declared)}, inferred ${formatType(inf)}`;
  const out: TensorType = { ...declared, dtype: declared.dtype ?? inf.dtype };
  if (!declared.shape) {
    if (inf.shape) out.shape = [...inf.shape];
  } else if (inf.shape) {
    if (declared.shape.length !== inf.shape.length) return `declared ${formatType(declared)}, inferred ${formatType(inf)}`;
    const dims: Dim[] = [];
    for (let i = 0; i < declared.shape.length; i++) {
      const d = mergeDim(declared.shape[i], inf.shape[i]);
      if (d === 'conflict') return `declared ${formatType(declared)}, inferred ${formatType(inf)}`;
      dims.push(d);
    }
    out.shape = dims;
  }
  return out;
}

class Engine {
  private readonly symbolic = new Map<Value, Dim[]>();
  readonly report: InferReport = { unknownOps: new Map(), problems: [], shapeValues: this.symbolic };
  private readonly folded = new Map<Value, Tensor>();
  private fresh = 0;
  private readonly model: Model;
  private readonly registry: OpRegistry;
  private readonly strict: boolean;

  constructor(model: Model, registry: OpRegistry, strict: boolean) {
    this.model = model;
    this.registry = registry;
    this.strict = strict;
  }

  graph(g: Graph): void {
    for (const node of g.nodes) this.node(node);
  }

  constant(v: Value | null): Tensor | undefined {
    if (!v) return undefined;
    return this.folded.get(v) ?? constantOf(v);
  }

  symbolicOf(v: Value | null): Dim[] | undefined {
    if (!v) return undefined;
    const s = this.symbolic.get(v);
    if (s) return s;
    const c = this.constant(v);
    if (c && c.rank <= 1 && c.size <= FOLD_LIMIT && /^u?int(8|16|32|64)$/.test(c.dtype)) return c.toNumbers();
    return undefined;
  }

  freshDim(hint = 'unk'): string {
    for (;;) {
      const name = `${hint}__${++this.fresh}`;
      if (!this.model.graph.hasName(name)) return name;
    }
  }

  private problem(node: Node, message: string): void {
    if (this.strict) throw badInput(`shape inference: ${node.describe()}: ${message}`);
    this.report.problems.push({ node: node.describe(), message });
  }

  private node(node: Node): void {
    const schema = this.registry.get(node.domain, node.opType);
    if (!schema?.infer) {
      const key = isOnnxDomain(node.domain) ? node.opType : `${node.domain}.${node.opType}`;
      this.report.unknownOps.set(key, (this.report.unknownOps.get(key) ?? 0) + 1);
      return;
    }
    const ctx = new Ctx(this, node, this.model.opset(node.domain) ?? 1);
    try {
      schema.infer(ctx);
    } catch (e) {
      if (e instanceof InferError) this.problem(node, e.message);
      else this.problem(node, `shape rule failed (${(e as Error).message})`);
      return;
    }
    if (schema.kernel && node.subgraphs().length === 0) this.tryFold(node, schema.kernel.bind(schema));
  }

  /** Evaluates a node whose inputs are all small constants, so shape tensors computed from constants are known. */
  private tryFold(node: Node, kernel: (ctx: KernelContext) => Tensor[]): void {
    // Only when every output is known to be small: a hostile shape must not make us allocate.
    for (const v of node.outputs) {
      if (!v) continue;
      const t = v.type;
      if (t?.kind !== 'tensor' || !t.shape || !t.shape.every((d) => typeof d === 'number')) return;
      if ((t.shape as number[]).reduce((a, b) => a * b, 1) > FOLD_LIMIT) return;
    }
    const inputs: Array<Tensor | undefined> = [];
    for (const v of node.inputs) {
      if (!v) {
        inputs.push(undefined);
        continue;
      }
      const c = this.constant(v);
      if (!c || c.size > FOLD_LIMIT || c.dtype === 'string') return;
      inputs.push(c);
    }
    if (inputs.length === 0 && node.opType !== 'Constant') return;
    try {
      const kctx: KernelContext = {
        node,
        opset: this.model.opset(node.domain) ?? 1,
        numInputs: inputs.length,
        input: (i) => {
          const t = inputs[i];
          if (!t) throw new Error(`missing input ${i}`);
          return t;
        },
        optional: (i) => inputs[i],
        runSubgraph: () => {
          throw new Error('no subgraphs while folding');
        },
        fail: (m) => {
          throw new Error(m);
        },
      };
      const outs = kernel(kctx);
      outs.forEach((t, i) => {
        const v = node.outputs[i];
        if (v && t.size <= FOLD_LIMIT) this.folded.set(v, t);
      });
    } catch {
      // Folding is opportunistic; the shape rule already ran.
    }
  }

  setType(node: Node, v: Value, t: ValueType): void {
    // A tensor type that knows neither element type nor rank says nothing; runtimes reject
    // value_info without an element type, so it is not recorded.
    if (t.kind === 'tensor' && t.dtype === undefined && t.shape === undefined) return;
    const merged = mergeTypes(v.type, t);
    if (typeof merged === 'string') {
      this.problem(node, `output ${v.name}: ${merged}`);
      return;
    }
    v.type = merged;
  }

  setSymbolic(v: Value, dims: Dim[]): void {
    this.symbolic.set(v, dims);
  }

  subgraph(g: Graph, inputTypes: ReadonlyArray<ValueType | undefined>): Array<ValueType | undefined> {
    g.inputs.forEach((v, i) => {
      const t = inputTypes[i];
      if (t) {
        const merged = mergeTypes(v.type, t);
        if (typeof merged !== 'string') v.type = merged;
      }
    });
    this.graph(g);
    return g.outputs.map((v) => v.type);
  }
}

class Ctx implements InferContext {
  readonly node: Node;
  readonly opset: number;
  private readonly engine: Engine;

  constructor(engine: Engine, node: Node, opset: number) {
    this.engine = engine;
    this.node = node;
    this.opset = opset;
  }

  get numInputs(): number {
    return this.node.inputs.length;
  }

  get numOutputs(): number {
    return this.node.outputs.length;
  }

  hasInput(i: number): boolean {
    return !!this.node.inputs[i];
  }

  hasOutput(i: number): boolean {
    return !!this.node.outputs[i];
  }

  inputType(i: number): ValueType | undefined {
    return this.node.inputs[i]?.type;
  }

  tensor(i: number): TensorType | undefined {
    const t = this.inputType(i);
    return t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') ? t : undefined;
  }

  dtype(i: number): DType | undefined {
    return this.tensor(i)?.dtype ?? this.constant(i)?.dtype;
  }

  shape(i: number): Shape | undefined {
    const s = this.tensor(i)?.shape;
    if (s) return s;
    const c = this.constant(i);
    return c ? [...c.dims] : undefined;
  }

  rank(i: number): number | undefined {
    return this.shape(i)?.length;
  }

  constant(i: number): Tensor | undefined {
    return this.engine.constant(this.node.inputs[i] ?? null);
  }

  symbolic(i: number): Dim[] | undefined {
    return this.engine.symbolicOf(this.node.inputs[i] ?? null);
  }

  setOutput(i: number, type: ValueType): void {
    const v = this.node.outputs[i];
    if (v) this.engine.setType(this.node, v, type);
  }

  output(i: number, dtype: DType | undefined, shape: Shape | undefined): void {
    this.setOutput(i, shape === undefined ? { kind: 'tensor', dtype } : { kind: 'tensor', dtype, shape: [...shape] });
  }

  outputSymbolic(i: number, dims: Dim[]): void {
    const v = this.node.outputs[i];
    if (v) this.engine.setSymbolic(v, dims);
  }

  freshDim(hint?: string): string {
    return this.engine.freshDim(hint);
  }

  inferSubgraph(g: Graph, inputTypes: ReadonlyArray<ValueType | undefined>): Array<ValueType | undefined> {
    return this.engine.subgraph(g, inputTypes);
  }

  fail(message: string): never {
    throw new InferError(message);
  }
}
