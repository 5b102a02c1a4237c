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
 */
import { badInput } from '../errors.js';
import { constantOf } from '../ops/constants.js';
import { inferShapes } from '../ops/infer.js';
import { fromNumbers } from '../ops/util.js';
import type { Attribute } from './attributes.js';
import { irVersionForOpset } from './builder.js';
import { type DType, dtypeCode, isFloat, isSigned } from './dtype.js';
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from './graph.js';
import { Tensor } from './tensor.js';
import type { Dim, ValueType } from './types.js';

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

// ---------------------------------------------------------------- operator history

/**
 * Every op of the default domain with the opset versions that (re)defined it, through opset 21.
 * Upsample (deprecated at 10) and Scatter (deprecated at 11) are rewritten to Resize and
 * ScatterElements at those versions.
 */
const HISTORY_TEXT = `
Abs 1 6 13 | Acos 7 | Acosh 9 | Add 1 6 7 13 14 | AffineGrid 20 | And 1 7 | ArgMax 1 11 12 13 | ArgMin 1 11 12 13 |
Asin 7 | Asinh 9 | Atan 7 | Atanh 9 | AveragePool 1 7 10 11 19 | BatchNormalization 1 6 7 9 14 15 | Bernoulli 15 |
BitShift 11 | BitwiseAnd 18 | BitwiseNot 18 | BitwiseOr 18 | BitwiseXor 18 | BlackmanWindow 17 | Cast 1 6 9 13 19 21 |
CastLike 15 19 21 | Ceil 1 6 13 | Celu 12 | CenterCropPad 18 | Clip 1 6 11 12 13 | Col2Im 18 | Compress 9 11 |
Concat 1 4 11 13 | ConcatFromSequence 11 | Constant 1 9 11 12 13 19 21 | ConstantOfShape 9 20 21 | Conv 1 11 |
ConvInteger 10 | ConvTranspose 1 11 | Cos 7 | Cosh 9 | CumSum 11 14 | DFT 17 20 | DeformConv 19 |
DepthToSpace 1 11 13 | DequantizeLinear 10 13 19 21 | Det 11 | Div 1 6 7 13 14 | Dropout 1 6 7 10 12 13 |
DynamicQuantizeLinear 11 | Einsum 12 | Elu 1 6 | Equal 1 7 11 13 19 | Erf 9 13 | Exp 1 6 13 | Expand 8 13 | EyeLike 9 |
Flatten 1 9 11 13 21 | Floor 1 6 13 | GRU 1 3 7 14 | Gather 1 11 13 | GatherElements 11 13 | GatherND 11 12 13 |
Gelu 20 | Gemm 1 6 7 9 11 13 | GlobalAveragePool 1 | GlobalLpPool 1 2 | GlobalMaxPool 1 | Greater 1 7 9 13 |
GreaterOrEqual 12 16 | GridSample 16 20 | GroupNormalization 18 21 | HammingWindow 17 | HannWindow 17 |
HardSigmoid 1 6 | HardSwish 14 | Hardmax 1 11 13 | Identity 1 13 14 16 19 21 | If 1 11 13 16 19 21 | ImageDecoder 20 |
InstanceNormalization 1 6 | IsInf 10 20 | IsNaN 9 13 20 | LRN 1 13 | LSTM 1 7 14 | LayerNormalization 17 |
LeakyRelu 1 6 16 | Less 1 7 9 13 | LessOrEqual 12 16 | Log 1 6 13 | LogSoftmax 1 11 13 | Loop 1 11 13 16 19 21 |
LpNormalization 1 | LpPool 1 2 11 18 | MatMul 1 9 13 | MatMulInteger 10 | Max 1 6 8 12 13 | MaxPool 1 8 10 11 12 |
MaxRoiPool 1 | MaxUnpool 9 11 | Mean 1 6 8 13 | MeanVarianceNormalization 9 13 | MelWeightMatrix 17 | Min 1 6 8 12 13 |
Mish 18 | Mod 10 13 | Mul 1 6 7 13 14 | Multinomial 7 | Neg 1 6 13 | NegativeLogLikelihoodLoss 12 13 |
NonMaxSuppression 10 11 | NonZero 9 13 | Not 1 | OneHot 9 11 | Optional 15 | OptionalGetElement 15 18 |
OptionalHasElement 15 18 | Or 1 7 | PRelu 1 6 7 9 16 | Pad 1 2 11 13 18 19 21 | Pow 1 7 12 13 15 | QLinearConv 10 |
QLinearMatMul 10 21 | QuantizeLinear 10 13 19 21 | RNN 1 7 14 | RandomNormal 1 | RandomNormalLike 1 | RandomUniform 1 |
RandomUniformLike 1 | Range 11 | Reciprocal 1 6 13 | ReduceL1 1 11 13 18 | ReduceL2 1 11 13 18 |
ReduceLogSum 1 11 13 18 | ReduceLogSumExp 1 11 13 18 | ReduceMax 1 11 12 13 18 20 | ReduceMean 1 11 13 18 |
ReduceMin 1 11 12 13 18 20 | ReduceProd 1 11 13 18 | ReduceSum 1 11 13 | ReduceSumSquare 1 11 13 18 |
RegexFullMatch 20 | Relu 1 6 13 14 | Reshape 1 5 13 14 19 21 | Resize 10 11 13 18 19 | ReverseSequence 10 |
RoiAlign 10 16 | Round 11 | STFT 17 | Scan 8 9 11 16 19 21 | Scatter 9 11 | ScatterElements 11 13 16 18 |
ScatterND 11 13 16 18 | Selu 1 6 | SequenceAt 11 | SequenceConstruct 11 | SequenceEmpty 11 | SequenceErase 11 |
SequenceInsert 11 | SequenceLength 11 | SequenceMap 17 | Shape 1 13 15 19 21 | Shrink 9 | Sigmoid 1 6 13 | Sign 9 13 |
Sin 7 | Sinh 9 | Size 1 13 19 21 | Slice 1 10 11 13 | Softmax 1 11 13 | SoftmaxCrossEntropyLoss 12 13 | Softplus 1 |
Softsign 1 | SpaceToDepth 1 13 | Split 1 2 11 13 18 | SplitToSequence 11 | Sqrt 1 6 13 | Squeeze 1 11 13 21 |
StringConcat 20 | StringNormalizer 10 | StringSplit 20 | Sub 1 6 7 13 14 | Sum 1 6 8 13 | Tan 7 | Tanh 1 6 13 |
TfIdfVectorizer 9 | ThresholdedRelu 10 | Tile 1 6 13 | TopK 1 10 11 | Transpose 1 13 21 | Trilu 14 | Unique 11 |
Unsqueeze 1 11 13 21 | Upsample 1 7 9 10 | Where 9 16 | Xor 1 7`;

const HISTORY: ReadonlyMap<string, readonly number[]> = new Map(
  HISTORY_TEXT.split('|').map((entry): [string, number[]] => {
    const [op, ...versions] = entry.trim().split(/\s+/);
    return [op, versions.map(Number)];
  }),
);

/** The version of `op` in force at `opset`, or undefined when the op did not exist yet. */
function versionAt(op: string, opset: number): number | undefined {
  let found: number | undefined;
  for (const v of HISTORY.get(op) ?? []) if (v <= opset) found = v;
  return found;
}

/** The op with the version of it in force at `opset`, as in "Softmax-11". */
function describeVersion(op: string, version: number): string {
  return `${op}-${versionAt(op, version) ?? version}`;
}

// ---------------------------------------------------------------- the rewrite context

type Adapter = (s: Step) => void;

interface AttrValues {
  int: number;
  float: number;
  ints: number[];
  floats: number[];
  string: string;
}

/** One node moving to `version` of its op. */
class Step {
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

const int = (value: number): Attribute => ({ type: 'int', value });
const ints = (value: number[]): Attribute => ({ type: 'ints', value });
const float = (value: number): Attribute => ({ type: 'float', value });
const floats = (value: number[]): Attribute => ({ type: 'floats', value });
const str = (value: string): Attribute => ({ type: 'string', value });

// ---------------------------------------------------------------- adapters

/** Attributes that became inputs: `names` (in input order from `first`) move to int64 inputs. */
function attrsToInputs(names: string[], first: number, required: string[] = []): Adapter {
  return (s) => {
    const values = names.map((n) => s.take(n, 'ints'));
    names.forEach((n, i) => {
      if (values[i] === undefined && required.includes(n)) s.refuse(`attribute "${n}" is required`);
    });
    values.forEach((v, i) => {
      s.node.setInput(first + i, v === undefined ? null : s.ints(names[i], v));
    });
    s.trimInputs();
  };
}

/** The optional `axes` attribute became an optional input (Squeeze 13, ReduceSum 13, the other Reduce* 18). */
const axesToInput = attrsToInputs(['axes'], 1);

/** Ops that dropped the legacy `consumed_inputs` attribute at opset 6. */
const CONSUMED_INPUTS_AT_6 = [
  'Abs',
  'Add',
  'BatchNormalization',
  'Ceil',
  'Clip',
  'Div',
  'Dropout',
  'Elu',
  'Exp',
  'Floor',
  'HardSigmoid',
  'InstanceNormalization',
  'LeakyRelu',
  'Log',
  'Max',
  'Mean',
  'Min',
  'Mul',
  'Neg',
  'PRelu',
  'Reciprocal',
  'Relu',
  'Selu',
  'Sigmoid',
  'Sqrt',
  'Sub',
  'Sum',
  'Tanh',
];

/**
 * Binary ops before 7 broadcast B onto A only with `broadcast=1`, aligning B's dims with A's
 * starting at `axis` (suffix alignment when `axis` is absent). Numpy broadcasting aligns from the
 * end, so B gets trailing 1-dims when `axis` leaves room after it.
 */
const legacyBroadcast: Adapter = (s) => {
  const broadcast = s.take('broadcast', 'int') ?? 0;
  const axisAttr = s.take('axis', 'int');
  if (broadcast !== 1 || axisAttr === undefined) return;
  const a = s.node.input(0);
  const b = s.node.input(1);
  if (!a || !b) return;
  const what = `the old broadcast with axis=${axisAttr}`;
  const ra = s.needRank(a, what);
  const rb = s.needRank(b, what);
  const axis = axisAttr < 0 ? axisAttr + ra : axisAttr;
  const trailing = ra - axis - rb;
  if (axis < 0 || trailing < 0) s.refuse(`axis ${axisAttr} does not fit a rank-${rb} operand inside a rank-${ra} one`);
  if (trailing > 0) s.replaceInput(1, s.appendOnes(b, rb, trailing));
};

/**
 * PRelu before 7: a 1-D slope of size C is per channel (axis 1, as Caffe2 and PyTorch export it);
 * from 7 the slope broadcasts numpy-style, aligned from the end, so it becomes [C, 1, …, 1].
 */
const prelu7: Adapter = (s) => {
  const x = s.node.input(0);
  const slope = s.node.input(1);
  if (!x || !slope) return;
  const sd = s.shape(slope) ?? s.refuse(`the per-channel slope needs the shape of "${slope.name}", which is unknown`);
  if (sd.length !== 1 || sd[0] === 1) return;
  const xd = s.shape(x) ?? s.refuse(`the per-channel slope needs the rank of "${x.name}", which is unknown`);
  if (xd.length <= 2) return;
  // A slope sized like X's last axis (and not like its channels) was already numpy-aligned.
  if (typeof xd[1] === 'number' && typeof sd[0] === 'number' && xd[1] !== sd[0] && xd[xd.length - 1] === sd[0]) return;
  s.replaceInput(1, s.appendOnes(slope, 1, xd.length - 2));
};

/**
 * BatchNormalization 6 → 7: `is_test` goes (the number of outputs now tells training from
 * inference); `spatial` changes meaning (at 7, spatial=0 takes per-activation statistics, while
 * at 6 the statistics are always per channel).
 */
const batchNorm7: Adapter = (s) => {
  const isTest = s.take('is_test', 'int') ?? 0;
  const spatial = s.take('spatial', 'int') ?? 1;
  if (isTest !== 0) {
    // In test mode the training outputs were not filled; from 7 on, asking for them means training.
    for (let i = 1; i <= 4; i++) if (s.outputRead(i)) s.refuse(`is_test=1, yet training output "${s.node.outputs[i]?.name}" is read`);
    for (let i = 4; i >= 1; i--) s.dropOutput(i);
  }
  const training = s.node.outputs.slice(1).some((o) => o);
  if (training && spatial === 0) s.refuse('training-mode BatchNormalization with spatial=0 has no equivalent');
};

/** BatchNormalization 7 → 9: `spatial` is gone; spatial=0 (per-activation statistics) is written out. */
const batchNorm9: Adapter = (s) => {
  const spatial = s.take('spatial', 'int') ?? 1;
  if (spatial === 1) return;
  if (s.node.outputs.slice(1).some((o) => o)) s.refuse('training-mode BatchNormalization with spatial=0 has no equivalent');
  const [x, scale, bias, mean, variance] = s.node.inputs;
  if (!x || !scale || !bias || !mean || !variance) return s.refuse('an input is missing');
  const eps = s.node.float('epsilon', 1e-5);
  const dtype = s.needDtype(x, 'spatial=0');
  // Y = (X − mean) / √(var + ε) · scale + B, parameters [C, D1, …] broadcast against [N, C, D1, …].
  const centered = s.before('Sub', [x, mean]);
  const std = s.before('Sqrt', [s.before('Add', [variance, s.scalar('epsilon', dtype, eps)])]);
  const scaled = s.before('Mul', [s.before('Div', [centered, std]), scale]);
  const y = s.node.output(0);
  s.after('Add', [scaled, bias], [], y);
  s.remove();
};

/** BatchNormalization 9 → 14: training mode is the `training_mode` attribute; saved_mean/var outputs are gone. */
const batchNorm14: Adapter = (s) => {
  if (!s.node.outputs.slice(1).some((o) => o)) return;
  s.dropOutput(4);
  s.dropOutput(3);
  s.set('training_mode', int(1));
};

/** Dropout 7 → 10: the mask is bool; a reader of the old (input-typed) mask gets a Cast. */
const dropout10: Adapter = (s) => {
  if (!s.outputRead(1)) return;
  const dtype = s.needDtype(s.node.input(0), 'casting the mask back to the input type');
  const { old, fresh } = s.detachOutput(1);
  s.after('Cast', [fresh], [['to', int(dtypeCode(dtype))]], old);
};

/** Dropout 10 → 12: `ratio` is an input. */
const dropout12: Adapter = (s) => {
  const ratio = s.take('ratio', 'float');
  if (ratio === undefined) return;
  const dtype = s.dtype(s.node.input(0));
  s.node.setInput(1, s.scalar('ratio', dtype && isFloat(dtype) ? dtype : 'float32', ratio));
};

/** Softmax, LogSoftmax, Hardmax 11 → 13: the op no longer flattens the input to 2-D at `axis`. */
const softmax13: Adapter = (s) => {
  const x = s.node.input(0);
  if (!x) return;
  const axis = s.node.int('axis', 1);
  const rank = s.rank(x);
  if (rank !== undefined && rank > 0) {
    const a = axis < 0 ? axis + rank : axis;
    // Normalizing the flattened tail is normalizing the last axis when it is the only one.
    const tailSize = s.shape(x)?.slice(a + 1);
    if (a === rank - 1 || (a >= 0 && a < rank && tailSize?.every((d) => d === 1))) {
      s.set('axis', int(a));
      return;
    }
  }
  // Flatten at `axis`, normalize each row, give the result the input's shape back.
  const shape = s.before('Shape', [x]);
  s.node.setInput(0, s.before('Flatten', [x], [['axis', int(axis)]]));
  s.set('axis', int(1));
  const { old, fresh } = s.detachOutput(0);
  s.after('Reshape', [fresh, shape], [], old);
};

/** Clip 6 → 11: `min`/`max` are scalar inputs of the input's type. */
const clip11: Adapter = (s) => {
  const min = s.take('min', 'float');
  const max = s.take('max', 'float');
  if (min === undefined && max === undefined) return;
  const dtype = s.needDtype(s.node.input(0), 'making min/max inputs');
  s.node.setInput(1, min === undefined ? null : s.scalar('min', dtype, min));
  s.node.setInput(2, max === undefined ? null : s.scalar('max', dtype, max));
  s.trimInputs();
};

/** Pad 1 → 2: `paddings` is renamed `pads` (refused where Pad-1's text and example disagree on the order). */
const pad2: Adapter = (s) => {
  const p = s.take('paddings', 'ints');
  if (!p) return s.refuse('attribute "paddings" is required');
  const r = p.length / 2;
  // Pad-1's attribute text orders paddings [x1_begin, x2_begin, …, x1_end, …]; its example pairs them per axis.
  const paired = [...Array.from({ length: r }, (_, i) => p[2 * i]), ...Array.from({ length: r }, (_, i) => p[2 * i + 1])];
  if (paired.some((v, i) => v !== p[i])) {
    s.refuse(`Pad-1 documents two orders for paddings [${p.join(', ')}] and they give different results`);
  }
  s.set('pads', ints(p));
};

/** Pad 2 → 11: `pads` and `value` are inputs. */
const pad11: Adapter = (s) => {
  const pads = s.take('pads', 'ints') ?? s.refuse('attribute "pads" is required');
  const value = s.take('value', 'float') ?? 0;
  s.node.setInput(1, s.ints('pads', pads));
  if (s.node.str('mode', 'constant') === 'constant' && value !== 0) {
    s.node.setInput(2, s.scalar('value', s.needDtype(s.node.input(0), `padding with ${value}`), value));
  }
};

/** Split 1 → 2: lengths come from the `split` attribute only (not a second input); Split-1 had no default axis. */
const split2: Adapter = (s) => {
  const second = s.node.input(1);
  if (second) {
    const c = s.constant(second) ?? s.refuse('the split lengths come from a computed input, which Split-2 cannot take');
    s.set('split', ints(c.toNumbers()));
    s.truncateInputs(1);
  }
  if (s.node.int('axis') === undefined) s.refuse('Split-1 without an axis has no defined meaning');
};

/** Split 12 → 13: `split` is an input. */
const split13 = attrsToInputs(['split'], 1);

/** Split 13 → 18: without `split`, the number of parts must be given as `num_outputs`. */
const split18: Adapter = (s) => {
  if (!s.node.input(1)) s.set('num_outputs', int(s.node.outputs.length));
};

/** Reshape 4 → 5: `shape` is an input. */
const reshape5: Adapter = (s) => {
  s.drop('consumed_inputs');
  const shape = s.take('shape', 'ints') ?? s.refuse('attribute "shape" is required');
  s.node.setInput(1, s.ints('shape', shape));
};

/** TensorProto.DataType names, for Cast-1's string `to`. */
const DATA_TYPE_CODES: Readonly<Record<string, number>> = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
};

/** Cast 1 → 6: `to` is a DataType code instead of its name. */
const cast6: Adapter = (s) => {
  const a = s.node.attr('to');
  if (a?.type !== 'string') return;
  const code = DATA_TYPE_CODES[a.value.toUpperCase()] ?? s.refuse(`"to" names an unknown data type "${a.value}"`);
  s.set('to', int(code));
};

/** Tile 1 → 6: (tiles, axis) scalars become one `repeats` vector. */
const tile6: Adapter = (s) => {
  const [x, tiles, axis] = s.node.inputs;
  if (!x || !tiles || !axis) return s.refuse('Tile-1 takes input, tiles and axis');
  const t = s.constant(tiles);
  const a = s.constant(axis);
  if (!t || !a) return s.refuse('tiles and axis must be constants to make the repeats vector');
  const rank = s.needRank(x, 'the repeats vector');
  const ax = a.scalarValue() < 0 ? a.scalarValue() + rank : a.scalarValue();
  if (ax < 0 || ax >= rank) s.refuse(`axis ${a.scalarValue()} is out of range for rank ${rank}`);
  const repeats = new Array<number>(rank).fill(1);
  repeats[ax] = t.scalarValue();
  s.truncateInputs(1);
  s.node.addInput(s.ints('repeats', repeats));
};

/** LpPool / GlobalLpPool 1 → 2: `p` is an int. */
const lpPool2: Adapter = (s) => {
  const a = s.node.attr('p');
  if (a?.type === 'float') {
    if (!Number.isInteger(a.value)) s.refuse(`p = ${a.value} is not a whole number, which LpPool-2 needs`);
    s.set('p', int(a.value));
  }
  if (s.node.opType === 'LpPool' && !s.node.ints('kernel_shape')) s.refuse('attribute "kernel_shape" is required from LpPool-2 on');
};

/** Selu 1 → 6: the defaults of alpha and gamma gained digits; old nodes keep the old values. */
const selu6: Adapter = (s) => {
  s.drop('consumed_inputs');
  if (s.node.attr('alpha') === undefined) s.set('alpha', float(1.673200011253357));
  if (s.node.attr('gamma') === undefined) s.set('gamma', float(1.0506999492645264));
};

/** Upsample 1 → 7: height_scale/width_scale of the NCHW input become `scales`. */
const upsample7: Adapter = (s) => {
  const h = s.take('height_scale', 'float');
  const w = s.take('width_scale', 'float');
  if (h === undefined || w === undefined) return s.refuse('height_scale and width_scale are required');
  s.set('scales', floats([1, 1, h, w]));
  if (s.node.str('mode') === 'bilinear') s.set('mode', str('linear'));
};

/** Upsample 7 → 9: `scales` is an input. */
const upsample9: Adapter = (s) => {
  const scales = s.take('scales', 'floats') ?? s.refuse('attribute "scales" is required');
  s.node.setInput(1, s.init('scales', Tensor.from('float32', [scales.length], scales)));
};

/** Resize nodes that were Upsample, whose scales are ≥ 1 by definition. */
const fromUpsample = new WeakSet<Node>();

/** Upsample 9 → 10: deprecated in favour of Resize-10, which has the same inputs and semantics. */
const upsample10: Adapter = (s) => {
  s.node.opType = 'Resize';
  fromUpsample.add(s.node);
};

/**
 * Resize 10 → 11: a `roi` input is added, and the old behaviour is spelled out: coordinates map
 * asymmetrically (x_in = x_out / scale) and nearest rounds down when upsampling and up when
 * downsampling (as Upsample and Resize-10 did; Resize-11's default would be half_pixel with
 * round_prefer_floor). Axes scaled both ways get one Resize per direction.
 */
const resize11: Adapter = (s) => {
  const raw = s.node.str('mode', 'nearest');
  const mode = raw === 'bilinear' || raw === 'trilinear' ? 'linear' : raw;
  if (mode !== 'nearest' && mode !== 'linear') s.refuse(`mode "${raw}" is not one of Resize-10's modes`);
  s.set('mode', str(mode));
  const [x, scales] = s.node.inputs;
  if (!x || !scales) return s.refuse('inputs X and scales are required');
  const roi = s.init('roi', Tensor.from('float32', [0], []));
  s.node.truncateInputs(1);
  s.node.addInput(roi);
  s.node.addInput(scales);
  s.set('coordinate_transformation_mode', str('asymmetric'));
  if (mode === 'linear') return;
  const values = s.constant(scales)?.toNumbers();
  if (fromUpsample.has(s.node) || values?.every((v) => v >= 1)) return s.set('nearest_mode', str('floor'));
  if (values?.every((v) => v <= 1)) return s.set('nearest_mode', str('ceil'));
  // Upsample the growing axes (rounding down), then shrink the others (rounding up).
  let up: Value;
  let down: Value;
  if (values) {
    up = s.init(
      'scales_up',
      Tensor.from(
        'float32',
        [values.length],
        values.map((v) => Math.max(v, 1)),
      ),
    );
    down = s.init(
      'scales_down',
      Tensor.from(
        'float32',
        [values.length],
        values.map((v) => Math.min(v, 1)),
      ),
    );
  } else {
    const one = s.scalar('one', s.dtype(scales) ?? 'float32', 1);
    up = s.before('Max', [scales, one]);
    down = s.before('Min', [scales, one]);
  }
  s.replaceInput(2, up);
  s.set('nearest_mode', str('floor'));
  const { old, fresh } = s.detachOutput(0);
  s.after(
    'Resize',
    [fresh, roi, down],
    [
      ['mode', str('nearest')],
      ['coordinate_transformation_mode', str('asymmetric')],
      ['nearest_mode', str('ceil')],
    ],
    old,
  );
};

/**
 * Resize 11 → 13: coordinate_transformation_mode "tf_half_pixel_for_nn" is gone. Its coordinate is
 * the half_pixel one plus ½, so its floor is half_pixel's round_prefer_ceil and its
 * round_prefer_floor is half_pixel's ceil.
 */
const resize13: Adapter = (s) => {
  if (s.node.str('coordinate_transformation_mode') !== 'tf_half_pixel_for_nn') return;
  const mode = s.node.str('mode', 'nearest');
  const nearest = s.node.str('nearest_mode', 'round_prefer_floor');
  const equivalents: Record<string, string> = { floor: 'round_prefer_ceil', round_prefer_floor: 'ceil' };
  const mapped =
    (mode === 'nearest' ? equivalents[nearest] : undefined) ??
    s.refuse(`coordinate_transformation_mode "tf_half_pixel_for_nn" with mode "${mode}", nearest_mode "${nearest}" has no equivalent`);
  s.set('coordinate_transformation_mode', str('half_pixel'));
  s.set('nearest_mode', str(mapped));
};

/** Scatter 9 → 11: deprecated in favour of ScatterElements-11, with the same inputs and semantics. */
const scatter11: Adapter = (s) => {
  s.node.opType = 'ScatterElements';
};

/**
 * OneHot 9 → 11: negative indices now count from the end; before, they (like any index outside
 * [0, depth)) gave an all-off row. Negative indices are moved far out of range to keep that.
 */
const oneHot11: Adapter = (s) => {
  const idx = s.node.input(0);
  if (!idx) return;
  const c = s.constant(idx);
  if (c?.toNumbers().every((v) => v >= 0)) return;
  const dtype = s.needDtype(idx, 'keeping negative indices out of range');
  if (dtype === 'bool' || (!isFloat(dtype) && !isSigned(dtype))) return;
  const asInt = dtype === 'int64' ? idx : s.before('Cast', [idx], [['to', int(dtypeCode('int64'))]]);
  const negative = s.before('Less', [asInt, s.scalar('zero', 'int64', 0)]);
  s.node.setInput(0, s.before('Where', [negative, s.scalar('out_of_range', 'int64', -(2 ** 62)), asInt]));
};

/** GRU 1 → 3: GRU-1 spelt the forward direction "foward". */
const gru3: Adapter = (s) => {
  if (s.node.str('direction') === 'foward') s.set('direction', str('forward'));
};

/**
 * Scan 8 → 9: the batch axis (and sequence_lens) is gone. A batch of one converts: inputs lose
 * axis 0 and outputs get it back.
 */
const scan9: Adapter = (s) => {
  if (s.node.input(0)) s.refuse('sequence_lens has no equivalent in Scan-9');
  const inputs = s.node.inputs.slice(1);
  for (const v of inputs) {
    const d = v ? s.shape(v)?.[0] : undefined;
    if (v && d !== 1) s.refuse(`input "${v.name}" has batch size ${d ?? 'unknown'}; only a batch of 1 converts to Scan-9`);
  }
  const directions = s.take('directions', 'ints');
  if (directions) s.set('scan_input_directions', ints(directions));
  const squeezed = inputs.map((v) => (v ? s.before('Squeeze', [v], [['axes', ints([0])]]) : null));
  s.node.truncateInputs(0);
  for (const v of squeezed) s.node.addInput(v);
  s.node.outputs.forEach((o, i) => {
    if (!o) return;
    const { old, fresh } = s.detachOutput(i);
    s.after('Unsqueeze', [fresh], [['axes', ints([0])]], old);
  });
};

/** RoiAlign 10 → 16: the new coordinate_transformation_mode defaults to half_pixel; version 10 did not shift. */
const roiAlign16: Adapter = (s) => {
  if (s.node.attr('coordinate_transformation_mode') === undefined) s.set('coordinate_transformation_mode', str('output_half_pixel'));
};

/** DFT 17 → 20: `axis` (default 1) is an input (default −2). */
const dft20: Adapter = (s) => {
  const axis = s.take('axis', 'int') ?? 1;
  if (!s.node.input(1)) s.node.setInput(1, null);
  s.node.setInput(2, s.init('axis', Tensor.from('int64', [], [axis])));
};

/** GridSample 16 → 20: modes "bilinear"/"bicubic" are named "linear"/"cubic". */
const gridSample20: Adapter = (s) => {
  const mode = s.node.str('mode');
  if (mode === 'bilinear') s.set('mode', str('linear'));
  if (mode === 'bicubic') s.set('mode', str('cubic'));
};

/** GroupNormalization 18 → 21: scale and bias are per channel instead of per group. */
const groupNorm21: Adapter = (s) => {
  const [x, scale, bias] = s.node.inputs;
  if (!x || !scale || !bias) return s.refuse('inputs X, scale and bias are required');
  const groups = s.node.int('num_groups') ?? s.refuse('attribute "num_groups" is required');
  const channels = s.shape(x)?.[1];
  let perGroupShape: Value | undefined;
  const expand = (v: Value, which: string): Value => {
    const t = s.constant(v);
    if (t && typeof channels === 'number') {
      if (t.size !== groups || channels % groups !== 0)
        s.refuse(`${which} has ${t.size} values for ${groups} groups of ${channels} channels`);
      const per = channels / groups;
      const values = t.toNumbers();
      return s.init(
        `${which}_per_channel`,
        fromNumbers(
          t.dtype,
          [channels],
          Array.from({ length: channels }, (_, c) => values[Math.floor(c / per)]),
        ),
      );
    }
    // [G] → [G, 1] → [G, C/G] → [C], with C read from X's shape at run time.
    if (!perGroupShape) {
      const c = s.before(
        'Shape',
        [x],
        [
          ['start', int(1)],
          ['end', int(2)],
        ],
      );
      const cpg = s.before('Div', [c, s.ints('groups', [groups])]);
      perGroupShape = s.before('Concat', [s.ints('groups_dim', [groups]), cpg], [['axis', int(0)]]);
    }
    const column = s.before('Reshape', [v, s.ints(`${which}_column`, [groups, 1])]);
    const grid = s.before('Expand', [column, perGroupShape]);
    return s.before('Reshape', [grid, s.ints(`${which}_flat`, [-1])]);
  };
  s.replaceInput(1, expand(scale, 'scale'));
  s.replaceInput(2, expand(bias, 'bias'));
};

// -- ops that were experimental before opset 10 (removed from the spec in ONNX 1.5)

/** y = x · a + b for experimental ops whose parameters are attributes; skips a = 1 and b = 0. */
function affineInto(s: Step, a: number, b: number | Tensor): void {
  const x = s.node.input(0) ?? s.refuse('input is missing');
  const dtype = s.needDtype(x, 'the replacement Mul/Add');
  const y = s.node.output(0);
  let v = x;
  const addB = typeof b === 'number' ? b !== 0 : true;
  if (a !== 1) v = addB ? s.before('Mul', [v, s.scalar('scale', dtype, a)]) : s.after('Mul', [v, s.scalar('scale', dtype, a)], [], y);
  if (addB) s.after('Add', [v, typeof b === 'number' ? s.scalar('bias', dtype, b) : s.init('bias', b)], [], y);
  else if (a === 1) s.after('Identity', [v], [], y);
  s.remove();
}

const EXPERIMENTAL: ReadonlyMap<string, Adapter> = new Map<string, Adapter>([
  [
    'ImageScaler',
    (s) => {
      const bias = s.node.floats('bias') ?? s.node.ints('bias');
      const dtype = s.needDtype(s.node.input(0), 'the replacement Mul/Add');
      affineInto(s, s.node.float('scale', 1), bias ? fromNumbers(dtype, [bias.length, 1, 1], bias) : 0);
    },
  ],
  ['Scale', (s) => affineInto(s, s.node.float('scale', 1), 0)],
  ['Affine', (s) => affineInto(s, s.node.float('alpha', 1), s.node.float('beta', 0))],
  [
    'ScaledTanh',
    (s) => {
      const alpha = s.node.float('alpha') ?? s.refuse('attribute "alpha" is required');
      const beta = s.node.float('beta') ?? s.refuse('attribute "beta" is required');
      const x = s.node.input(0);
      if (!x) return s.refuse('input is missing');
      const dtype = s.needDtype(x, 'the replacement nodes');
      const t = s.before('Tanh', [s.before('Mul', [x, s.scalar('beta', dtype, beta)])]);
      s.after('Mul', [t, s.scalar('alpha', dtype, alpha)], [], s.node.output(0));
      s.remove();
    },
  ],
  [
    'ParametricSoftplus',
    (s) => {
      const alpha = s.node.float('alpha') ?? s.refuse('attribute "alpha" is required');
      const beta = s.node.float('beta') ?? s.refuse('attribute "beta" is required');
      const x = s.node.input(0);
      if (!x) return s.refuse('input is missing');
      const dtype = s.needDtype(x, 'the replacement nodes');
      const t = s.before('Softplus', [s.before('Mul', [x, s.scalar('beta', dtype, beta)])]);
      s.after('Mul', [t, s.scalar('alpha', dtype, alpha)], [], s.node.output(0));
      s.remove();
    },
  ],
  // Same definition (alpha defaults to 1) as the standard ThresholdedRelu-10.
  ['ThresholdedRelu', () => {}],
  // DynamicSlice(data, starts, ends, axes) is Slice-10 with the same inputs.
  [
    'DynamicSlice',
    (s) => {
      s.node.opType = 'Slice';
    },
  ],
]);

/**
 * Experimental ops with no defined equivalent in the standard set, with the opset that ends
 * them: 10 (removed), or 9 for MeanVarianceNormalization, which then became a standard op with
 * other semantics (statistics over `axes`, not per instance and channel).
 */
const EXPERIMENTAL_REFUSED: ReadonlyMap<string, number> = new Map([
  ['ATen', 10],
  ['ConstantFill', 10],
  ['Crop', 10],
  ['GRUUnit', 10],
  ['GivenTensorFill', 10],
  ['MeanVarianceNormalization', 9],
]);

/** Rewrites by `Op@version`: the version the node moves to. */
const ADAPTERS = new Map<string, Adapter>([
  ...CONSUMED_INPUTS_AT_6.filter((op) => op !== 'Selu').map((op): [string, Adapter] => [`${op}@6`, (s) => s.drop('consumed_inputs')]),
  ['Selu@6', selu6],
  ['Pad@2', pad2],
  ['Split@2', split2],
  ['LpPool@2', lpPool2],
  ['GlobalLpPool@2', lpPool2],
  ['GRU@3', gru3],
  [
    'Concat@4',
    (s) => {
      if (s.node.attr('axis') === undefined) s.set('axis', int(1));
    },
  ],
  ['Reshape@5', reshape5],
  ['Cast@6', cast6],
  ['Tile@6', tile6],
  ...['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less'].map((op): [string, Adapter] => [
    `${op}@7`,
    legacyBroadcast,
  ]),
  ['PRelu@7', prelu7],
  ['Gemm@7', (s) => s.drop('broadcast')],
  ['BatchNormalization@7', batchNorm7],
  ['Dropout@7', (s) => s.drop('is_test')],
  ...['GRU', 'LSTM', 'RNN'].map((op): [string, Adapter] => [`${op}@7`, (s) => s.drop('output_sequence')]),
  ['Upsample@7', upsample7],
  ['BatchNormalization@9', batchNorm9],
  ['Upsample@9', upsample9],
  ['Scan@9', scan9],
  ['Slice@10', attrsToInputs(['starts', 'ends', 'axes'], 1, ['starts', 'ends'])],
  ['TopK@10', (s) => s.node.setInput(1, s.ints('k', [s.take('k', 'int') ?? s.refuse('attribute "k" is required')]))],
  ['Upsample@10', upsample10],
  ['Dropout@10', dropout10],
  ['Resize@11', resize11],
  ['Clip@11', clip11],
  ['Pad@11', pad11],
  ['Scatter@11', scatter11],
  ['OneHot@11', oneHot11],
  ['Dropout@12', dropout12],
  ['Softmax@13', softmax13],
  ['LogSoftmax@13', softmax13],
  ['Hardmax@13', softmax13],
  ['Squeeze@13', axesToInput],
  ['Unsqueeze@13', attrsToInputs(['axes'], 1, ['axes'])],
  ['ReduceSum@13', axesToInput],
  ['Split@13', split13],
  ['Resize@13', resize13],
  ['BatchNormalization@14', batchNorm14],
  ['RoiAlign@16', roiAlign16],
  ...[
    'ReduceL1',
    'ReduceL2',
    'ReduceLogSum',
    'ReduceLogSumExp',
    'ReduceMax',
    'ReduceMean',
    'ReduceMin',
    'ReduceProd',
    'ReduceSumSquare',
  ].map((op): [string, Adapter] => [`${op}@18`, axesToInput]),
  ['Split@18', split18],
  ['DFT@20', dft20],
  ['GridSample@20', gridSample20],
  ['GroupNormalization@21', groupNorm21],
]);

// ---------------------------------------------------------------- the driver

class Upgrader {
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
