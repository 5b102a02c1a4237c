/**
 * The graph IR: values in single-assignment form, nodes that consume and produce them, and
 * graphs that own both. Every value knows its producer and its uses, so rewrites are local and
 * cheap. Subgraphs (If/Loop/Scan bodies) are Graphs owned by a node attribute; their nodes may
 * read values of enclosing graphs directly (ONNX's outer-scope capture).
 */
import { type Attribute, attributeGraphs } from './attributes.js';
import type { Metadata, SparseTensor, Tensor } from './tensor.js';
import type { ValueType } from './types.js';

export interface Use {
  node: Node;
  index: number;
}

export class Value {
  name: string;
  type: ValueType | undefined;
  /** Constant data (an ONNX initializer). A value that is also a graph input is overridable. */
  initializer: Tensor | undefined;
  /** Constant data stored sparse (an ONNX sparse_initializer). */
  sparseInitializer: SparseTensor | undefined;
  producer: Node | undefined;
  readonly uses: Use[] = [];
  /** The graph whose scope defines this value. */
  readonly graph: Graph;
  doc?: string;
  metadata?: Metadata;
  /** Fields of the file's ValueInfoProto this version does not know, written back unchanged. */
  unknownFields?: Uint8Array[];

  constructor(graph: Graph, name: string, type?: ValueType) {
    this.graph = graph;
    this.name = name;
    this.type = type;
    this.initializer = undefined;
    this.sparseInitializer = undefined;
    this.producer = undefined;
  }

  /** Constant: has initializer data and is not an input the caller may override. */
  get isConstant(): boolean {
    return (this.initializer !== undefined || this.sparseInitializer !== undefined) && !this.isGraphInput;
  }

  get isGraphInput(): boolean {
    return this.graph.inputs.includes(this);
  }

  get isGraphOutput(): boolean {
    return this.graph.outputs.includes(this);
  }

  /** Index of this value among its producer's outputs. */
  get producerIndex(): number {
    return this.producer ? this.producer.outputs.indexOf(this) : -1;
  }

  /** Nodes reading this value (a node reading it twice is listed twice). */
  get consumers(): Node[] {
    return this.uses.map((u) => u.node);
  }

  toString(): string {
    return `%${this.name}`;
  }
}

export class Node {
  opType: string;
  domain: string;
  name: string;
  readonly inputs: Array<Value | null> = [];
  readonly outputs: Array<Value | null> = [];
  readonly attrs = new Map<string, Attribute>();
  graph: Graph;
  doc?: string;
  overload?: string;
  metadata?: Metadata;
  /** ONNX NodeDeviceConfigurationProto messages, carried through unchanged. */
  deviceConfigurations?: unknown[];
  /** Set once the node is taken out of its graph, so rewrites holding a stale list can skip it. */
  removed = false;
  /** Fields of the file's NodeProto this version does not know, written back unchanged. */
  unknownFields?: Uint8Array[];

  constructor(graph: Graph, opType: string, domain = '', name = '') {
    this.graph = graph;
    this.opType = opType;
    this.domain = domain;
    this.name = name;
  }

  /** Sets input `index`, keeping use lists right. `null` marks an omitted optional input. */
  setInput(index: number, value: Value | null): void {
    const old = this.inputs[index];
    if (old) removeUse(old, this, index);
    while (this.inputs.length <= index) this.inputs.push(null);
    this.inputs[index] = value;
    if (value) value.uses.push({ node: this, index });
  }

  addInput(value: Value | null): void {
    this.setInput(this.inputs.length, value);
  }

  /** Drops all inputs from index `from` on. */
  truncateInputs(from: number): void {
    for (let i = this.inputs.length - 1; i >= from; i--) {
      const v = this.inputs[i];
      if (v) removeUse(v, this, i);
      this.inputs.pop();
    }
  }

  input(index: number): Value | null {
    return this.inputs[index] ?? null;
  }

  output(index = 0): Value {
    const v = this.outputs[index];
    if (!v) throw new Error(`node ${this.describe()} has no output ${index}`);
    return v;
  }

  /** Display form: `Conv "conv1"` or just the op type when unnamed. */
  describe(): string {
    const op = this.domain && this.domain !== 'ai.onnx' ? `${this.domain}.${this.opType}` : this.opType;
    return this.name ? `${op} node "${this.name}"` : `${op} node (output ${this.outputs.find((o) => o)?.name ?? '?'})`;
  }

  attr(name: string): Attribute | undefined {
    return this.attrs.get(name);
  }

  int(name: string, fallback: number): number;
  int(name: string): number | undefined;
  int(name: string, fallback?: number): number | undefined {
    const a = this.attrs.get(name);
    return a && a.type === 'int' ? a.value : fallback;
  }

  float(name: string, fallback: number): number;
  float(name: string): number | undefined;
  float(name: string, fallback?: number): number | undefined {
    const a = this.attrs.get(name);
    if (a && (a.type === 'float' || a.type === 'int')) return a.value;
    return fallback;
  }

  ints(name: string, fallback: number[]): number[];
  ints(name: string): number[] | undefined;
  ints(name: string, fallback?: number[]): number[] | undefined {
    const a = this.attrs.get(name);
    return a && a.type === 'ints' ? a.value : fallback;
  }

  floats(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    return a && a.type === 'floats' ? a.value : undefined;
  }

  str(name: string, fallback: string): string;
  str(name: string): string | undefined;
  str(name: string, fallback?: string): string | undefined {
    const a = this.attrs.get(name);
    return a && a.type === 'string' ? a.value : fallback;
  }

  tensorAttr(name: string): Tensor | undefined {
    const a = this.attrs.get(name);
    return a && a.type === 'tensor' ? a.value : undefined;
  }

  graphAttr(name: string): Graph | undefined {
    const a = this.attrs.get(name);
    return a && a.type === 'graph' ? a.value : undefined;
  }

  /** Subgraphs held by this node's attributes. */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attrs.values()) out.push(...attributeGraphs(a));
    return out;
  }

  toString(): string {
    return this.describe();
  }
}

function removeUse(value: Value, node: Node, index: number): void {
  const i = value.uses.findIndex((u) => u.node === node && u.index === index);
  if (i >= 0) value.uses.splice(i, 1);
}

/** Names are unique across a model's whole graph hierarchy (ONNX requires it for subgraphs). */
class NameTable {
  readonly used = new Set<string>();
  private counter = 0;

  fresh(base: string): string {
    const stem = base || 'v';
    if (!this.used.has(stem)) return stem;
    for (;;) {
      const name = `${stem}_${++this.counter}`;
      if (!this.used.has(name)) return name;
    }
  }
}

export class Graph {
  name: string;
  doc?: string;
  metadata?: Metadata;
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** Values with initializer data, in file order. */
  readonly initializers: Value[] = [];
  nodes: Node[] = [];
  /** ONNX quantization_annotation entries, carried through unchanged. */
  quantizationAnnotations?: Array<{ tensorName: string; entries: Metadata }>;
  readonly parent: Graph | undefined;
  /** The node whose attribute holds this graph, for subgraphs. */
  ownerNode: Node | undefined;
  /** Fields of the file's GraphProto this version does not know, written back unchanged. */
  unknownFields?: Uint8Array[];
  private readonly names: NameTable;

  constructor(name = 'main', parent?: Graph) {
    this.name = name;
    this.parent = parent;
    this.names = parent ? parent.names : new NameTable();
  }

  get root(): Graph {
    return this.parent ? this.parent.root : this;
  }

  /** A name not yet used anywhere in this model's graphs, based on `base`. */
  freshName(base: string): string {
    return this.names.fresh(base);
  }

  hasName(name: string): boolean {
    return this.names.used.has(name);
  }

  /** Creates a value owned by this graph. The name is made unique unless `exact` is set. */
  createValue(name: string, type?: ValueType, exact = false): Value {
    const unique = exact ? name : this.freshName(name);
    this.names.used.add(unique);
    return new Value(this, unique, type);
  }

  renameValue(value: Value, name: string): void {
    if (value.name === name) return;
    if (this.names.used.has(name)) throw new Error(`cannot rename ${value.name} to ${name}: the name is taken`);
    this.names.used.delete(value.name);
    this.names.used.add(name);
    value.name = name;
  }

  /** Forgets a removed value's name so it can be reused. */
  releaseName(name: string): void {
    this.names.used.delete(name);
  }

  addInput(name: string, type?: ValueType): Value {
    const v = this.createValue(name, type);
    this.inputs.push(v);
    return v;
  }

  addInitializer(name: string, tensor: Tensor, type?: ValueType): Value {
    const v = this.createValue(name, type ?? { kind: 'tensor', dtype: tensor.dtype, shape: [...tensor.dims] });
    v.initializer = tensor;
    this.initializers.push(v);
    return v;
  }

  addOutput(value: Value): void {
    this.outputs.push(value);
  }

  /**
   * Creates a node. `outputs` is a count (names made from the node name or op type) or a list of
   * names. The node goes at the end, or before `opts.before`.
   */
  addNode(
    opType: string,
    inputs: ReadonlyArray<Value | null>,
    outputs: number | ReadonlyArray<string> = 1,
    opts: { domain?: string; name?: string; attrs?: Iterable<[string, Attribute]>; before?: Node; after?: Node } = {},
  ): Node {
    const node = new Node(this, opType, opts.domain ?? '', opts.name ?? '');
    for (const v of inputs) node.addInput(v);
    const names =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, (_, i) => `${opts.name || opType.toLowerCase()}${outputs > 1 ? `_${i}` : ''}_out`)
        : outputs;
    for (const n of names) {
      if (n === '') {
        node.outputs.push(null);
        continue;
      }
      const v = this.createValue(n);
      v.producer = node;
      node.outputs.push(v);
    }
    if (opts.attrs) for (const [k, a] of opts.attrs) node.attrs.set(k, a);
    if (opts.before) this.nodes.splice(this.indexOf(opts.before), 0, node);
    else if (opts.after) this.nodes.splice(this.indexOf(opts.after) + 1, 0, node);
    else this.nodes.push(node);
    return node;
  }

  indexOf(node: Node): number {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new Error(`${node.describe()} is not in graph ${this.name}`);
    return i;
  }

  /**
   * Removes a node whose outputs nobody reads any more. Its inputs lose this use; its output
   * names are released.
   */
  removeNode(node: Node): void {
    for (const out of node.outputs) {
      if (out && (out.uses.length > 0 || out.isGraphOutput)) {
        throw new Error(`cannot remove ${node.describe()}: output ${out.name} is still used`);
      }
    }
    node.truncateInputs(0);
    for (const out of node.outputs) {
      if (out) {
        out.producer = undefined;
        this.releaseName(out.name);
      }
    }
    this.nodes.splice(this.indexOf(node), 1);
    node.removed = true;
  }

  /**
   * Takes a node out of the graph but keeps its output values (with no producer): for rewrites
   * that give those values another source, such as constant folding turning them into
   * initializers.
   */
  detachNode(node: Node): void {
    node.truncateInputs(0);
    for (const out of node.outputs) if (out && out.producer === node) out.producer = undefined;
    this.nodes.splice(this.indexOf(node), 1);
    node.removed = true;
  }

  /** Turns a value into an initializer holding `tensor` (its producer, if any, must be detached). */
  makeInitializer(value: Value, tensor: Tensor): void {
    value.initializer = tensor;
    value.type = { kind: 'tensor', dtype: tensor.dtype, shape: [...tensor.dims] };
    if (!this.initializers.includes(value)) this.initializers.push(value);
  }

  /** Removes initializer-only values nobody reads (not graph inputs or outputs). */
  removeUnusedInitializers(): number {
    const before = this.initializers.length;
    const keep = this.initializers.filter((v) => v.uses.length > 0 || v.isGraphInput || v.isGraphOutput);
    for (const v of this.initializers) if (!keep.includes(v)) this.releaseName(v.name);
    this.initializers.splice(0, this.initializers.length, ...keep);
    return before - keep.length;
  }

  /**
   * Points every use of `from` (node inputs and graph outputs, in this graph and its subgraphs)
   * at `to`. A graph output keeps its public name: `to` takes it over when it can; otherwise an
   * Identity node carries the old name.
   */
  replaceAllUses(from: Value, to: Value): void {
    if (from === to) return;
    for (const use of [...from.uses]) use.node.setInput(use.index, to);
    const g = from.graph;
    const outIndex = g.outputs.indexOf(from);
    if (outIndex < 0) return;
    const publicName = from.name;
    const canTakeName = to.graph === g && !to.isGraphInput && !to.isGraphOutput && !to.isConstant;
    for (let i = 0; i < g.outputs.length; i++) if (g.outputs[i] === from) g.outputs[i] = to;
    if (canTakeName) {
      const type = from.type;
      g.releaseName(publicName);
      from.name = g.freshName(`${publicName}_replaced`);
      g.names.used.add(from.name);
      g.renameValue(to, publicName);
      if (type && !to.type) to.type = type;
    } else {
      // Keep the output's name with an Identity over the replacement.
      g.releaseName(publicName);
      from.name = g.freshName(`${publicName}_replaced`);
      g.names.used.add(from.name);
      const id = g.addNode('Identity', [to], [publicName]);
      id.output().type = from.type ?? to.type;
      for (let i = 0; i < g.outputs.length; i++) if (g.outputs[i] === to && i === outIndex) g.outputs[i] = id.output();
    }
  }

  /** Values of enclosing graphs read by nodes of this graph or its nested subgraphs. */
  capturedValues(): Set<Value> {
    const out = new Set<Value>();
    const visit = (g: Graph): void => {
      for (const n of g.nodes) {
        for (const v of n.inputs) if (v && !isInScope(v, this)) out.add(v);
        for (const sg of n.subgraphs()) visit(sg);
      }
      for (const v of g.outputs) if (!isInScope(v, this)) out.add(v);
    };
    visit(this);
    return out;
  }

  /** Every node of this graph and of all nested subgraphs. */
  *allNodes(): Generator<Node> {
    for (const n of this.nodes) {
      yield n;
      for (const sg of n.subgraphs()) yield* sg.allNodes();
    }
  }

  /**
   * Reorders nodes topologically (stable: keeps file order where it is already valid). Returns
   * the nodes on a cycle if there is one, else undefined.
   */
  topoSort(): Node[] | undefined {
    const deps = new Map<Node, Node[]>();
    for (const n of this.nodes) deps.set(n, nodeDependencies(n, this));
    // Depth-first with an explicit stack: deep chains must not overflow the JS call stack.
    const state = new Map<Node, 1 | 2>();
    const order: Node[] = [];
    for (const start of this.nodes) {
      if (state.has(start)) continue;
      const stack: Array<{ node: Node; next: number }> = [{ node: start, next: 0 }];
      state.set(start, 1);
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        const ds = deps.get(top.node) ?? [];
        if (top.next < ds.length) {
          const d = ds[top.next++];
          const s = state.get(d);
          if (s === 1) {
            const from = stack.findIndex((f) => f.node === d);
            return stack.slice(from).map((f) => f.node);
          }
          if (s === undefined) {
            state.set(d, 1);
            stack.push({ node: d, next: 0 });
          }
        } else {
          stack.pop();
          state.set(top.node, 2);
          order.push(top.node);
        }
      }
    }
    this.nodes = order;
    return undefined;
  }
}

/** True when `v` is defined in graph `g` (not in an enclosing graph). */
function isInScope(v: Value, g: Graph): boolean {
  return v.graph === g;
}

/** Nodes of `g` that must run before `n`: producers of its inputs and of values its subgraphs capture. */
function nodeDependencies(n: Node, g: Graph): Node[] {
  const out: Node[] = [];
  const add = (v: Value | null): void => {
    if (v?.producer && v.producer.graph === g) out.push(v.producer);
  };
  for (const v of n.inputs) add(v);
  for (const sg of n.subgraphs()) for (const v of sg.capturedValues()) add(v);
  return out;
}

/** A model-local function (ONNX FunctionProto). */
export interface ModelFunction {
  name: string;
  domain: string;
  overload?: string;
  /** Formal inputs and outputs are the body graph's inputs and outputs. */
  body: Graph;
  /** Names of attributes the function takes, and typed ones with defaults. */
  attributeNames: string[];
  attributeDefaults: Array<[string, Attribute]>;
  opsetImports: Map<string, number>;
  doc?: string;
  metadata?: Metadata;
}

export class Model {
  irVersion: number;
  /** Operator set versions by domain ('' is the default ONNX domain). */
  opsetImports: Map<string, number>;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  doc?: string;
  metadata?: Metadata;
  graph: Graph;
  functions: ModelFunction[] = [];
  /** ONNX TrainingInfoProto and DeviceConfigurationProto messages, carried through unchanged. */
  trainingInfo: unknown[] = [];
  deviceConfigurations: unknown[] = [];
  /** Fields of the file's ModelProto this version does not know, written back unchanged. */
  unknownFields?: Uint8Array[];

  constructor(graph: Graph, opsetImports: Map<string, number>, irVersion = 8) {
    this.graph = graph;
    this.opsetImports = opsetImports;
    this.irVersion = irVersion;
  }

  /** The imported version of an operator set ('' and 'ai.onnx' are the same domain). */
  opset(domain = ''): number | undefined {
    if (domain === '' || domain === 'ai.onnx') return this.opsetImports.get('') ?? this.opsetImports.get('ai.onnx');
    return this.opsetImports.get(domain);
  }
}

export function isOnnxDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}
