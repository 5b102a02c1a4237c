/**
 * The reference interpreter: runs a graph with the TypeScript kernels of src/ops. It is for
 * constant folding, tests and small models in places without onnxruntime — correct, simple and
 * slow. It follows the same Backend interface as onnxruntime.
 */
import { badInput, MobilizeError } from '../errors.js';
import { readOnnx } from '../formats/onnx/read.js';
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { constantOf } from '../ops/constants.js';
import { defaultRegistry } from '../ops/index.js';
import type { OpRegistry } from '../ops/registry.js';
import type { KernelContext } from '../ops/schema.js';
import type { Backend, Feeds, Session } from './backend.js';

export class KernelError extends MobilizeError {}

class Frame {
  private readonly values = new Map<Value, Tensor>();
  private readonly parent: Frame | undefined;

  constructor(parent?: Frame) {
    this.parent = parent;
  }

  set(v: Value, t: Tensor): void {
    this.values.set(v, t);
  }

  get(v: Value): Tensor | undefined {
    return this.values.get(v) ?? this.parent?.get(v);
  }
}

export class Interpreter {
  private readonly registry: OpRegistry;
  private readonly opsets: Map<string, number>;

  constructor(model: Model, registry: OpRegistry = defaultRegistry()) {
    this.registry = registry;
    this.opsets = model.opsetImports;
  }

  private opset(domain: string): number {
    if (isOnnxDomain(domain)) return this.opsets.get('') ?? this.opsets.get('ai.onnx') ?? 1;
    return this.opsets.get(domain) ?? 1;
  }

  /** Op types in the graph (subgraphs included) that have no reference kernel. */
  missingKernels(g: Graph): string[] {
    const missing = new Set<string>();
    for (const n of g.allNodes()) if (!this.registry.get(n.domain, n.opType)?.kernel) missing.add(n.opType);
    return [...missing];
  }

  /** Runs a graph: `inputs` binds its inputs in order (undefined leaves an input's default). */
  runGraph(g: Graph, inputs: ReadonlyArray<Tensor | undefined>, parent?: Frame): Tensor[] {
    const frame = new Frame(parent);
    g.inputs.forEach((v, i) => {
      const t = inputs[i] ?? v.initializer;
      if (t) frame.set(v, t);
    });
    for (const v of g.initializers) if (v.initializer && !frame.get(v)) frame.set(v, v.initializer);
    for (const node of g.nodes) this.runNode(node, frame);
    return g.outputs.map((v) => {
      const t = frame.get(v) ?? constantOf(v);
      if (!t) throw new KernelError(`graph output "${v.name}" was not computed`);
      return t;
    });
  }

  private runNode(node: Node, frame: Frame): void {
    const kernel = this.registry.get(node.domain, node.opType)?.kernel;
    if (!kernel) throw new KernelError(`the reference interpreter has no kernel for ${node.describe()}`);
    const inputs = node.inputs.map((v) => (v ? (frame.get(v) ?? constantOf(v)) : undefined));
    node.inputs.forEach((v, i) => {
      if (v && !inputs[i]) throw new KernelError(`${node.describe()}: input "${v.name}" has no value`);
    });
    const ctx: KernelContext = {
      node,
      opset: this.opset(node.domain),
      numInputs: inputs.length,
      input: (i) => {
        const t = inputs[i];
        if (!t) throw new KernelError(`${node.describe()}: input ${i} is required`);
        return t;
      },
      optional: (i) => inputs[i],
      runSubgraph: (g, subInputs) => this.runGraph(g, subInputs, frame),
      fail: (message) => {
        throw new KernelError(`${node.describe()}: ${message}`);
      },
    };
    const outs = kernel(ctx);
    node.outputs.forEach((v, i) => {
      if (v && outs[i]) frame.set(v, outs[i]);
    });
  }
}

/** A Backend over the reference interpreter. */
export function referenceBackend(registry?: OpRegistry): Backend {
  return {
    name: 'reference',
    async createSession(source: Model | Uint8Array): Promise<Session> {
      const model = source instanceof Uint8Array ? readOnnx(source) : source;
      const interp = new Interpreter(model, registry);
      const g = model.graph;
      const inputs = g.inputs.filter((v) => !v.initializer);
      return {
        inputNames: inputs.map((v) => v.name),
        outputNames: g.outputs.map((v) => v.name),
        async run(feeds: Feeds, outputNames?: readonly string[]): Promise<Record<string, Tensor>> {
          const bound = g.inputs.map((v) => {
            const t = feeds[v.name];
            if (!t && !v.initializer) throw badInput(`no value given for model input "${v.name}"`);
            return t;
          });
          const outs = interp.runGraph(g, bound);
          const result: Record<string, Tensor> = {};
          g.outputs.forEach((v, i) => {
            if (!outputNames || outputNames.includes(v.name)) result[v.name] = outs[i];
          });
          return result;
        },
        async release(): Promise<void> {},
      };
    },
  };
}
