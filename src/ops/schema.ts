/**
 * What mobilize knows about an operator, in one entry: attribute types, a shape/type rule, a
 * reference kernel, and a gradient rule. Entries live in one file per op family and are
 * collected by the registry.
 */
import type { AttrInput, AttributeType } from '../ir/attributes.js';
import type { DType } from '../ir/dtype.js';
import type { Graph, Node, Value } from '../ir/graph.js';
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

/**
 * What a gradient rule works with (src/train/autodiff.ts implements it). The rule reads the
 * forward node, its inputs and outputs (with the types shape inference gave them) and the
 * upstream gradients of its outputs; it emits standard ONNX nodes through `op` and sets the
 * gradient of each input that `needs` one. Every gradient has exactly its value's shape and
 * dtype. An input left without a gradient has gradient zero.
 */
export interface GradContext {
  readonly node: Node;
  /** Imported version of the node's operator set (at least 13). */
  readonly opset: number;
  /** Input i; fails when it is omitted. */
  input(i: number): Value;
  /** Input i, or undefined when omitted. */
  optionalInput(i: number): Value | undefined;
  /** Output i; fails when it is absent (see forwardOutput). */
  output(i: number): Value;
  /** dLoss/d(output i), shaped like output i; undefined when it is zero. */
  grad(i: number): Value | undefined;
  /** True when input i needs a gradient (it depends on a value being differentiated). */
  needs(i: number): boolean;
  /** Adds `g` (shaped like input i) to input i's gradient. */
  setGrad(i: number, g: Value): void;

  /** The element type of a forward value. */
  dtype(v: Value): DType;
  /** The (possibly symbolic) shape of a forward value; fails when its rank is unknown. */
  shape(v: Value): Shape;
  /** The shape of a forward value when every dim is a number; fails naming `why` otherwise. */
  staticShape(v: Value, why: string): number[];
  /** The value's data when the graph fixes it (a non-overridable initializer or a Constant). */
  constant(v: Value | undefined | null): Tensor | undefined;

  /** Emits a node into the gradient graph; returns its first output. Attributes as in ModelBuilder. */
  op(opType: string, inputs: ReadonlyArray<Value | null>, attrs?: Record<string, AttrInput>): Value;
  /** Emits a node with `outputs` outputs. */
  opMulti(opType: string, inputs: ReadonlyArray<Value | null>, outputs: number, attrs?: Record<string, AttrInput>): Value[];
  /** A 0-D constant (shared between rules). */
  scalar(value: number, dtype: DType): Value;
  /** A 1-D int64 constant (shared between rules). */
  ints(values: readonly number[]): Value;
  /** A constant tensor (an initializer). */
  tensor(t: Tensor, base?: string): Value;
  /** The shape of a forward value as a 1-D int64 value: a constant when static, else a Shape node. */
  shapeOf(v: Value): Value;
  /**
   * `x` (same element count) reshaped to the shape of the forward value `like`; `xShape`, when
   * known, lets symbolic dims that `x` shares at the same position stay a constant target.
   */
  reshapeTo(x: Value, like: Value, xShape?: Shape): Value;
  /**
   * A gradient `g` of shape `gShape` summed over the axes along which the forward value `like`
   * was broadcast to `gShape`, and shaped like `like`.
   */
  sumTo(g: Value, gShape: Shape, like: Value): Value;
  /** ReduceSum/ReduceMean/… over `axes`, in the form the model's opset takes. */
  reduce(op: string, x: Value, axes: readonly number[], keepdims: boolean): Value;
  /** Zeros shaped like the forward value `like`. */
  zerosLike(like: Value): Value;
  /** Output i of the forward node, added (with `type`) when it is missing (MaxPool's Indices, Dropout's mask). */
  forwardOutput(i: number, type?: ValueType): Value;
  /** Throws a MobilizeError naming this node. */
  fail(message: string): never;
}

/** Emits the gradients of a node's inputs from those of its outputs. */
export type GradRule = (ctx: GradContext) => void;

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
  /** Gradient rule for reverse-mode differentiation (src/train/autodiff.ts). */
  grad?: GradRule;
}
