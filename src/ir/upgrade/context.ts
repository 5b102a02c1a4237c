/**
 * The rewrite context an adapter works through: a Step is one node moving to one version of its
 * op, with what is known about its values (types from the upgrader's inference), attribute
 * edits, and builders for the constants and helper nodes a rewrite adds (in the form of the
 * step's version, upgraded afterwards like any other node). Also the Attribute constructors the
 * adapters write with.
 */
import { badInput } from '../../errors.js';
import { constantOf } from '../../ops/constants.js';
import { fromNumbers } from '../../ops/util.js';
import type { Attribute } from '../attributes.js';
import type { DType } from '../dtype.js';
import { type Graph, isOnnxDomain, type Node, type Value } from '../graph.js';
import { Tensor } from '../tensor.js';
import type { Dim, ValueType } from '../types.js';
import { describeVersion } from './history.js';
import type { Upgrader } from './index.js';

export type Adapter = (s: Step) => void;

interface AttrValues {
  int: number;
  float: number;
  ints: number[];
  floats: number[];
  string: string;
}

/** One node moving to `version` of its op. */
export class Step {
  /** Nodes the adapter added; they are upgraded from `version` on. */
  readonly created: Node[] = [];
  private lastAfter: Node | undefined;

  constructor(
    private readonly up: Upgrader,
    readonly node: Node,
    /** The opset the node's current form belongs to. */
    readonly from: number,
    readonly version: number,
  ) {}

  get graph(): Graph {
    return this.node.graph;
  }

  /** Throws the refusal for this node. */
  refuse(why: string): never {
    const op = this.node.opType;
    throw badInput(
      `cannot upgrade ${this.node.describe()} from opset ${this.up.from} to ${this.up.target}: ` +
        `at the step ${describeVersion(op, this.from)} → ${op}-${this.version}, ${why}`,
    );
  }

  // -- attributes

  drop(...names: string[]): void {
    for (const n of names) this.node.attrs.delete(n);
  }

  set(name: string, a: Attribute): void {
    this.node.attrs.set(name, a);
  }

  /** Removes attribute `name` and returns its value, which must have the expected type. */
  take<K extends keyof AttrValues>(name: string, type: K): AttrValues[K] | undefined {
    const a = this.node.attrs.get(name);
    this.node.attrs.delete(name);
    if (!a) return undefined;
    if (a.type === type || (type === 'float' && a.type === 'int')) return a.value as AttrValues[K];
    return this.refuse(`attribute "${name}" is ${a.type}, expected ${type}`);
  }

  // -- what is known about values

  type(v: Value | null): ValueType | undefined {
    return v ? this.up.typeOf(v) : undefined;
  }

  shape(v: Value | null): Dim[] | undefined {
    const t = this.type(v);
    return t?.kind === 'tensor' ? t.shape : undefined;
  }

  rank(v: Value | null): number | undefined {
    return this.shape(v)?.length;
  }

  dtype(v: Value | null): DType | undefined {
    const t = this.type(v);
    return t?.kind === 'tensor' ? t.dtype : undefined;
  }

  /** The element type of `v`, or a refusal saying what it was needed for. */
  needDtype(v: Value | null, purpose: string): DType {
    return this.dtype(v) ?? this.refuse(`${purpose} needs the element type of "${v?.name ?? '?'}", which is unknown`);
  }

  needRank(v: Value | null, purpose: string): number {
    return this.rank(v) ?? this.refuse(`${purpose} needs the rank of "${v?.name ?? '?'}", which is unknown`);
  }

  /** Data of `v` when the graph fixes it (an initializer callers cannot override, or a Constant). */
  constant(v: Value | null): Tensor | undefined {
    return v ? constantOf(v) : undefined;
  }

  // -- building

  /** A constant for this node's graph: an initializer, or a Constant node in a function body (which has none). */
  init(base: string, t: Tensor): Value {
    const name = `${this.baseName()}_${base}`;
    if (!this.up.inFunction(this.graph)) return this.up.addInitializer(this.graph, name, t);
    const n = this.graph.addNode('Constant', [], [this.graph.freshName(name)], {
      attrs: [['value', { type: 'tensor', value: t }]],
      before: this.node,
    });
    n.output().type = { kind: 'tensor', dtype: t.dtype, shape: [...t.dims] };
    this.created.push(n);
    return n.output();
  }

  ints(base: string, values: readonly number[], dims: readonly number[] = [values.length]): Value {
    return this.init(base, Tensor.from('int64', dims, values));
  }

  scalar(base: string, dtype: DType, value: number): Value {
    return this.init(base, fromNumbers(dtype, [], [value]));
  }

  /** Adds a node before the one being rewritten; returns its first output. */
  before(op: string, inputs: ReadonlyArray<Value | null>, attrs: Array<[string, Attribute]> = []): Value {
    const n = this.graph.addNode(op, inputs, [this.graph.freshName(`${this.baseName()}_${op.toLowerCase()}`)], {
      attrs,
      before: this.node,
    });
    this.created.push(n);
    return n.output();
  }

  /**
   * Adds a node after the rewritten one (and after earlier `after` nodes). With `into`, the
   * node's output is that existing value, which keeps its name, type and readers.
   */
  after(op: string, inputs: ReadonlyArray<Value | null>, attrs: Array<[string, Attribute]> = [], into?: Value): Value {
    const g = this.graph;
    const n = g.addNode(op, inputs, into ? [] : [g.freshName(`${this.baseName()}_${op.toLowerCase()}`)], {
      attrs,
      after: this.lastAfter ?? this.node,
    });
    if (into) {
      n.outputs.push(into);
      into.producer = n;
    }
    this.lastAfter = n;
    this.created.push(n);
    return n.output();
  }

  /**
   * Gives output `i` of the node a fresh value and returns the old one, for a rewrite that puts
   * nodes between the node and its readers (the old value is then produced by the last of them).
   */
  detachOutput(i: number): { old: Value; fresh: Value } {
    const old = this.node.outputs[i];
    if (!old) return this.refuse(`output ${i} is missing`);
    const fresh = this.graph.createValue(`${old.name}_${this.node.opType.toLowerCase()}`);
    fresh.producer = this.node;
    this.node.outputs[i] = fresh;
    return { old, fresh };
  }

  /** True when output `i` exists and something reads it (a node or the graph's outputs). */
  outputRead(i: number): boolean {
    const v = this.node.outputs[i];
    return !!v && (v.uses.length > 0 || v.isGraphOutput);
  }

  /** Drops optional output `i` (nothing may read it). */
  dropOutput(i: number): void {
    const v = this.node.outputs[i];
    if (!v) return;
    if (v.uses.length > 0 || v.isGraphOutput) this.refuse(`output "${v.name}" is read, so it cannot be dropped`);
    v.producer = undefined;
    this.graph.releaseName(v.name);
    this.node.outputs[i] = null;
    while (this.node.outputs.length > 1 && this.node.outputs[this.node.outputs.length - 1] === null) this.node.outputs.pop();
  }

  /** Points input `i` at `v`. A constant only this node read before leaves the graph. */
  replaceInput(i: number, v: Value | null): void {
    const old = this.node.input(i);
    this.node.setInput(i, v);
    if (old && old !== v) dropIfUnused(old);
  }

  /** Drops inputs from `from` on. Constants only this node read leave the graph. */
  truncateInputs(from: number): void {
    const old = this.node.inputs.slice(from);
    this.node.truncateInputs(from);
    for (const v of old) if (v) dropIfUnused(v);
  }

  /** Drops trailing omitted inputs. */
  trimInputs(): void {
    let n = this.node.inputs.length;
    while (n > 0 && this.node.inputs[n - 1] === null) n--;
    this.node.truncateInputs(n);
  }

  /** Takes the node out of its graph once its outputs are produced by replacement nodes. */
  remove(): void {
    this.graph.detachNode(this.node);
    this.node.outputs.splice(0);
  }

  /** `v` with `n` trailing dims of size 1 appended (a reshaped copy of constant data, else an Unsqueeze). */
  appendOnes(v: Value, rank: number, n: number): Value {
    const c = this.constant(v);
    if (c) return this.init(`${v.name}_reshaped`, c.reshape([...c.dims, ...new Array<number>(n).fill(1)]));
    const axes = Array.from({ length: n }, (_, i) => rank + i);
    return this.unsqueeze(v, axes);
  }

  /** An Unsqueeze before the node, in the form of this step's version. */
  unsqueeze(v: Value, axes: number[]): Value {
    if (this.version < 13) return this.before('Unsqueeze', [v], [['axes', ints(axes)]]);
    return this.before('Unsqueeze', [v, this.ints('axes', axes)]);
  }

  private baseName(): string {
    return this.node.name || this.node.outputs.find((o) => o)?.name || this.node.opType.toLowerCase();
  }
}

/** Removes a constant nobody reads any more: an initializer (not a graph input) or a Constant node's output. */
function dropIfUnused(v: Value): void {
  if (v.uses.length > 0 || v.isGraphOutput || v.isGraphInput) return;
  const g = v.graph;
  const i = g.initializers.indexOf(v);
  if (i >= 0) {
    g.initializers.splice(i, 1);
    g.releaseName(v.name);
  } else if (v.producer?.opType === 'Constant' && isOnnxDomain(v.producer.domain) && v.producer.outputs.length === 1) {
    g.removeNode(v.producer);
  }
}

export const int = (value: number): Attribute => ({ type: 'int', value });
export const ints = (value: number[]): Attribute => ({ type: 'ints', value });
export const float = (value: number): Attribute => ({ type: 'float', value });
export const floats = (value: number[]): Attribute => ({ type: 'floats', value });
export const str = (value: string): Attribute => ({ type: 'string', value });
