/**
 * A small helper for the training code that appends nodes to a graph: unique node names (onnxruntime
 * refuses two nodes of the same name), shared float32 scalar constants, and plain-JS attributes.
 * Browser-safe.
 */
import type { Attribute } from '../ir/attributes.js';
import type { Graph, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';

export type AttrValue = number | number[] | string;

function toAttribute(v: AttrValue, floats: boolean): Attribute {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'number') return floats || !Number.isInteger(v) ? { type: 'float', value: v } : { type: 'int', value: v };
  return { type: 'ints', value: v };
}

export class Emitter {
  readonly graph: Graph;
  private readonly prefix: string;
  private readonly nodeNames = new Set<string>();
  private readonly scalars = new Map<string, Value>();

  constructor(graph: Graph, prefix: string) {
    this.graph = graph;
    this.prefix = prefix;
    for (const n of graph.nodes) if (n.name) this.nodeNames.add(n.name);
  }

  /** Adds a node and returns its first output. Attributes named in `floatAttrs` are floats even when whole. */
  op(
    opType: string,
    inputs: ReadonlyArray<Value | null>,
    attrs: Record<string, AttrValue> = {},
    floatAttrs: readonly string[] = [],
  ): Value {
    let name = `${this.prefix}/${opType}`;
    for (let k = 1; this.nodeNames.has(name); k++) name = `${this.prefix}/${opType}_${k}`;
    this.nodeNames.add(name);
    const converted = Object.entries(attrs).map(([k, v]): [string, Attribute] => [k, toAttribute(v, floatAttrs.includes(k))]);
    return this.graph.addNode(opType, inputs, 1, { name, attrs: converted }).output();
  }

  /** A float32 scalar constant, shared by every use of the same number. */
  scalar(value: number): Value {
    const key = Object.is(value, -0) ? '-0' : String(value);
    let v = this.scalars.get(key);
    if (!v) {
      v = this.graph.addInitializer(`${this.prefix}/const`, Tensor.from('float32', [], [value]));
      this.scalars.set(key, v);
    }
    return v;
  }

  /** An int64 vector constant (axes). */
  ints(values: number[]): Value {
    return this.graph.addInitializer(`${this.prefix}/axes`, Tensor.from('int64', [values.length], values));
  }

  /** Gives `v` the name `want` (or a fresh one based on it) and makes it a graph output. */
  output(v: Value, want: string): Value {
    if (v.name !== want) this.graph.renameValue(v, this.graph.hasName(want) ? this.graph.freshName(want) : want);
    this.graph.addOutput(v);
    return v;
  }
}
