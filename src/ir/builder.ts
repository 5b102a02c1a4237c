/**
 * Building graphs in code:
 *
 *   const b = new ModelBuilder({ opset: 17 });
 *   const x = b.input('input', 'float32', ['N', 1, 28, 28]);
 *   const w = b.constant('w', Tensor.from('float32', [8, 1, 3, 3], weights));
 *   const y = b.op('Relu', [b.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
 *   b.output(y, 'logits');
 *   const model = b.build();
 *
 * Attribute values are plain JS values; their ONNX type comes from the op's schema where it
 * declares one (so `{ alpha: 1 }` on LeakyRelu is a float), else integers become ints.
 */
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import type { OpRegistry } from '../ops/registry.js';
import { type AttrInput, type Attribute, isAttribute } from './attributes.js';
import type { DType } from './dtype.js';
import { Graph, Model, type Value } from './graph.js';
import { Tensor } from './tensor.js';
import type { Shape, ValueType } from './types.js';
import { assertValid } from './verify.js';

/** IR version that goes with an opset (ONNX's versioning table). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

export interface BuilderOptions {
  opset?: number;
  name?: string;
  producer?: string;
  registry?: OpRegistry;
}

export interface OpOptions {
  name?: string;
  domain?: string;
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Output names; default from the node name or op type. */
  outputNames?: string[];
}

export class ModelBuilder {
  readonly graph: Graph;
  readonly opset: number;
  private readonly model: Model;
  private readonly registry: OpRegistry;

  constructor(options: BuilderOptions = {}) {
    this.opset = options.opset ?? 17;
    this.graph = new Graph(options.name ?? 'main');
    this.model = new Model(this.graph, new Map([['', this.opset]]), irVersionForOpset(this.opset));
    this.model.producerName = options.producer ?? 'mobilize';
    this.registry = options.registry ?? defaultRegistry();
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    return this.graph.addInput(name, { kind: 'tensor', dtype, shape: [...shape] });
  }

  constant(name: string, tensor: Tensor): Value {
    return this.graph.addInitializer(name, tensor);
  }

  /** A float32 constant from numbers. */
  floats(name: string, dims: number[], values: ArrayLike<number>): Value {
    return this.constant(name, Tensor.from('float32', dims, Float32Array.from(values)));
  }

  /** An int64 constant (shapes, axes) from numbers. */
  ints(name: string, values: number[], dims: number[] = [values.length]): Value {
    return this.constant(name, Tensor.from('int64', dims, values));
  }

  /** Adds a node; returns its first output. */
  op(opType: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, AttrInput> = {}, options: OpOptions = {}): Value {
    return this.opMulti(opType, inputs, attrs, options)[0];
  }

  /** Adds a node; returns all its outputs. */
  opMulti(opType: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, AttrInput> = {}, options: OpOptions = {}): Value[] {
    const domain = options.domain ?? '';
    if (domain && !this.model.opsetImports.has(domain)) this.model.opsetImports.set(domain, 1);
    const converted = Object.entries(attrs).map(([k, v]): [string, Attribute] => [k, this.attribute(opType, domain, k, v)]);
    const outputs = options.outputNames ?? options.outputs ?? 1;
    const node = this.graph.addNode(opType, inputs, outputs, { domain, name: options.name ?? '', attrs: converted });
    return node.outputs.filter((v): v is Value => v !== null);
  }

  /** Marks a value as a graph output, renaming it when `name` is given. */
  output(v: Value, name?: string, type?: ValueType): Value {
    if (name && v.name !== name) this.graph.renameValue(v, name);
    if (type) v.type = type;
    this.graph.addOutput(v);
    return v;
  }

  /** Infers shapes and types, checks the structure, and returns the model. */
  build(): Model {
    inferShapes(this.model, { registry: this.registry });
    assertValid(this.model, 'built model', { registry: this.registry });
    return this.model;
  }

  private attribute(opType: string, domain: string, name: string, v: AttrInput): Attribute {
    if (isAttribute(v)) return v;
    const declared = this.registry.get(domain, opType)?.attrs?.[name];
    if (v instanceof Tensor) return { type: 'tensor', value: v };
    if (v instanceof Graph) return { type: 'graph', value: v };
    if (typeof v === 'string') return { type: 'string', value: v };
    if (typeof v === 'number') {
      if (declared === 'float' || (!declared && !Number.isInteger(v))) return { type: 'float', value: v };
      return { type: 'int', value: v };
    }
    const list = [...v] as Array<number | string>;
    if (list.every((x) => typeof x === 'string')) return { type: 'strings', value: list as string[] };
    const nums = list as number[];
    if (declared === 'floats' || (!declared && nums.some((x) => !Number.isInteger(x)))) return { type: 'floats', value: nums };
    return { type: 'ints', value: nums };
  }
}
