/**
 * What mobilize knows about an operator, in one entry: attribute types, a shape/type rule, and
 * a reference kernel. Later issues add a gradient rule next to these. Entries live in one file
 * per op family and are collected by the registry.
 */
import type { AttributeType } from '../ir/attributes.js';
import type { DType } from '../ir/dtype.js';
import type { Graph, Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Dim, Shape, TensorType, ValueType } from '../ir/types.js';

export interface InferContext {
  readonly node: Node;
  /** Imported version of the node's operator set. */
  readonly opset: number;
  readonly numInputs: number;
  readonly numOutputs: number;
  /** True when input i is present (not omitted and not past the end). */
  hasInput(i: number): boolean;
  /** True when output i is requested (present and named). */
  hasOutput(i: number): boolean;
  inputType(i: number): ValueType | undefined;
  /** Input i's tensor type, when it is a tensor. */
  tensor(i: number): TensorType | undefined;
  dtype(i: number): DType | undefined;
  /** Input i's shape; undefined when missing or of unknown rank. */
  shape(i: number): Shape | undefined;
  rank(i: number): number | undefined;
  /** Input i's value when known before running: an initializer, a Constant, or folded during inference. */
  constant(i: number): Tensor | undefined;
  /** The elements of a small integer tensor input, possibly symbolic (data propagated from Shape). */
  symbolic(i: number): Dim[] | undefined;
  setOutput(i: number, type: ValueType): void;
  /** Shorthand for a tensor output type. */
  output(i: number, dtype: DType | undefined, shape: Shape | undefined): void;
  /** Records the (possibly symbolic) elements of a small integer output, for shape arithmetic downstream. */
  outputSymbolic(i: number, dims: Dim[]): void;
  /** A fresh symbol for a data-dependent dim (NonZero's count, Unique's length). */
  freshDim(hint?: string): string;
  /** Infers a subgraph given its input types; returns its output types. */
  inferSubgraph(g: Graph, inputTypes: ReadonlyArray<ValueType | undefined>): Array<ValueType | undefined>;
  /** Throws an inference error that names this node. */
  fail(message: string): never;
}

export interface KernelContext {
  readonly node: Node;
  readonly opset: number;
  readonly numInputs: number;
  /** Input i; throws when it is missing. */
  input(i: number): Tensor;
  /** Input i, or undefined when omitted. */
  optional(i: number): Tensor | undefined;
  /** Runs a subgraph (If branch, Loop body) with the given inputs; enclosing values stay visible. */
  runSubgraph(g: Graph, inputs: ReadonlyArray<Tensor | undefined>): Tensor[];
  /** Throws a kernel error that names this node. */
  fail(message: string): never;
}

export interface OpSchema {
  op: string;
  /** Operator set domain; '' is the default ONNX domain. */
  domain?: string;
  /** Attribute types by name (for the builder and the verifier). */
  attrs?: Readonly<Record<string, AttributeType>>;
  /** Output types from input types (and constant inputs). */
  infer?(ctx: InferContext): void;
  /** Reference implementation: correct and simple, not fast. Used for constant folding and tests. */
  kernel?(ctx: KernelContext): Tensor[];
}
