/**
 * Reverse-mode automatic differentiation over the IR: the backward pass as a graph of standard
 * ONNX ops appended to the model, so onnxruntime (node or web) runs forward and backward in one
 * session.
 *
 *   const { gradients } = buildGradients(model, loss, ['conv1.weight', 'fc.weight']);
 *   // model now also outputs conv1.weight_grad and fc.weight_grad
 *
 * How: shape inference types every value; the values that depend on a `wrt` value (and are
 * floats) are "varying", the values the loss depends on "reach the loss". Nodes with a varying
 * output that reaches the loss are visited in reverse topological order; each op's gradient rule
 * (`grad` in its schema, src/ops/*.ts) emits the gradients of its varying inputs through a
 * GradContext. A value read by several nodes gets the sum of their contributions (Add, or Sum
 * for three or more). Everything else is pruned: no gradient is computed for a value no `wrt`
 * flows into, nor for paths that do not reach the loss.
 *
 * Browser-safe: no Node module is imported here or by the rules.
 */
import { badInput } from '../errors.js';
import { type AttrInput, type Attribute, isAttribute } from '../ir/attributes.js';
import { dimEquals } from '../ir/dims.js';
import { type DType, isFloat } from '../ir/dtype.js';
import { Graph, type Model, type Node, type Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { formatShape, formatType, type Shape, type ValueType } from '../ir/types.js';
import { constantOf } from '../ops/constants.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import type { OpRegistry } from '../ops/registry.js';
import type { GradContext } from '../ops/schema.js';

/** The lowest default-domain opset the rules emit for (axes as inputs of ReduceSum/Squeeze/Unsqueeze/Split). */
export const MIN_GRAD_OPSET = 13;

export interface GradientOptions {
  /**
   * The gradient to start from, dLoss/dLoss (default: ones shaped like the loss). A graph input
   * here lets the caller scale the loss (loss scaling, or a weight per step).
   */
  seed?: Value;
  /** Adds each gradient as a graph output (default true). */
  addOutputs?: boolean;
  /** Name of the gradient of value `v` (default `${v}_grad`; made unique if taken). */
  gradName?: (wrt: Value) => string;
  registry?: OpRegistry;
}

export interface Gradients {
  /** The model, extended in place with the gradient nodes (and outputs). */
  model: Model;
  /** The gradient of each `wrt`, in order: same shape and dtype as its value. */
  gradients: Value[];
  /** `wrt` values the loss does not depend on; their gradients are zeros. */
  unreached: Value[];
  /** Nodes added to the graph (constants are added as initializers, not counted). */
  nodesAdded: number;
}

/**
 * Extends `model` in place with the gradients of the scalar (or any float) value `loss` with
 * respect to each value of `wrt` (initializers, graph inputs or intermediate values; by Value or
 * by name). For a non-scalar loss the gradient is that of the sum of its elements (unless `seed`
 * is given). The default-domain opset must be at least 13 (upgrade with `upgradeOpset(model, 17)`).
 * Throws a MobilizeError naming the node when an op on the path has no gradient rule (checked
 * before the model is touched) or when a rule cannot handle the node (the model may then be
 * partly extended). Clone the model first (`readOnnx(writeOnnx(m).model)`) to keep the original.
 */
export function buildGradients(
  model: Model,
  loss: Value | string,
  wrt: ReadonlyArray<Value | string>,
  options: GradientOptions = {},
): Gradients {
  return new Autodiff(model, options).run(loss, wrt);
}

/** Ops whose integer output still carries a gradient: the straight-through estimate of fake quantization. */
const STRAIGHT_THROUGH = new Set(['QuantizeLinear']);

function dtypeOf(v: Value): DType | undefined {
  const t = v.type;
  return t && (t.kind === 'tensor' || t.kind === 'sparse_tensor') ? t.dtype : undefined;
}

function label(node: Node): string {
  return node.name || node.outputs.find((o) => o)?.name || node.opType;
}

class Autodiff {
  readonly model: Model;
  readonly graph: Graph;
  readonly registry: OpRegistry;
  readonly opset: number;
  private readonly options: GradientOptions;
  /** Contributions to each value's gradient, summed when the value's producer is visited. */
  private readonly contributions = new Map<Value, Value[]>();
  private readonly finals = new Map<Value, Value | undefined>();
  /** Which forward node's rule emitted each gradient value (to name it when it is wrong). */
  readonly origin = new Map<Value, Node>();
  readonly varying = new Set<Value>();
  private readonly scalars = new Map<string, Value>();
  private readonly intConsts = new Map<string, Value>();
  private readonly shapes = new Map<Value, Value>();
  /** Node names in use: onnxruntime refuses two nodes of the same name. */
  private readonly nodeNames = new Set<string>();
  nodesAdded = 0;

  constructor(model: Model, options: GradientOptions) {
    this.model = model;
    this.graph = model.graph;
    this.options = options;
    this.registry = options.registry ?? defaultRegistry();
    const opset = model.opset('');
    if (opset === undefined || opset < MIN_GRAD_OPSET) {
      throw badInput(
        `cannot build gradients: the model is at opset ${opset ?? 'none'}; gradient rules need opset ${MIN_GRAD_OPSET} or later (upgrade it with upgradeOpset(model, 17))`,
      );
    }
    this.opset = opset;
    for (const n of model.graph.allNodes()) if (n.name) this.nodeNames.add(n.name);
  }

  private nodeName(base: string): string {
    let name = base;
    for (let k = 1; this.nodeNames.has(name); k++) name = `${base}_${k}`;
    this.nodeNames.add(name);
    return name;
  }

  private resolve(v: Value | string, what: string): Value {
    if (typeof v !== 'string') {
      if (v.graph !== this.graph) throw badInput(`${what} ${v.name} is not a value of the model's main graph`);
      return v;
    }
    const g = this.graph;
    const found =
      g.inputs.find((x) => x.name === v) ??
      g.initializers.find((x) => x.name === v) ??
      g.nodes.flatMap((n) => n.outputs).find((x): x is Value => x !== null && x.name === v);
    if (!found) throw badInput(`${what} "${v}" is not a value of the model`);
    return found;
  }

  run(lossArg: Value | string, wrtArg: ReadonlyArray<Value | string>): Gradients {
    const g = this.graph;
    const cycle = g.topoSort();
    if (cycle) throw badInput(`cannot build gradients: the graph has a cycle through ${cycle[0].describe()}`);
    inferShapes(this.model, { registry: this.registry });
    const loss = this.resolve(lossArg, 'loss');
    const wrt = wrtArg.map((w) => this.resolve(w, 'wrt value'));
    const lossType = dtypeOf(loss);
    if (!lossType || !isFloat(lossType)) throw badInput(`the loss ${loss.name} must be a float tensor, not ${formatType(loss.type)}`);
    for (const w of wrt) {
      const d = dtypeOf(w);
      if (!d || !isFloat(d))
        throw badInput(`cannot differentiate with respect to ${w.name}: it is ${formatType(w.type)}, not a float tensor`);
    }
    if (new Set(wrt).size !== wrt.length) throw badInput('wrt lists a value twice');

    // Forward: what depends on a wrt value.
    for (const w of wrt) this.varying.add(w);
    for (const node of g.nodes) {
      const reads = [...node.inputs, ...node.subgraphs().flatMap((sg) => [...sg.capturedValues()])];
      if (!reads.some((v) => v && this.varying.has(v))) continue;
      for (const out of node.outputs) {
        if (!out) continue;
        const d = dtypeOf(out);
        if (d === undefined || isFloat(d) || STRAIGHT_THROUGH.has(node.opType)) this.varying.add(out);
      }
    }
    // Backward: what the loss depends on.
    const reaches = new Set<Value>([loss]);
    for (let i = g.nodes.length - 1; i >= 0; i--) {
      const node = g.nodes[i];
      if (!node.outputs.some((o) => o && reaches.has(o))) continue;
      for (const v of node.inputs) if (v) reaches.add(v);
      for (const sg of node.subgraphs()) for (const v of sg.capturedValues()) reaches.add(v);
    }
    const active = g.nodes.filter((n) => n.outputs.some((o) => o && this.varying.has(o) && reaches.has(o)));
    // Every op on the path needs a rule: checked before anything is added to the model.
    const rules = active.map((node) => {
      const rule = this.registry.get(node.domain, node.opType)?.grad;
      if (!rule) throw badInput(`no gradient rule for ${node.describe()}`);
      return rule;
    });

    this.contributions.set(loss, [this.options.seed ?? this.seed(loss)]);
    for (let i = active.length - 1; i >= 0; i--) {
      const node = active[i];
      const grads = node.outputs.map((o) => (o && this.varying.has(o) && reaches.has(o) ? this.final(o) : undefined));
      if (grads.every((d) => d === undefined)) continue;
      rules[i](new Ctx(this, node, grads));
    }

    const unreached: Value[] = [];
    const gradients = wrt.map((w) => {
      const d = this.final(w);
      if (d) return d;
      unreached.push(w);
      return this.emit(undefined, 'ConstantOfShape', [this.shapeOf(w)], 1, { value: Tensor.zeros(dtypeOf(w) as DType, [1]) })[0];
    });
    const named = this.name(wrt, gradients);
    this.check(wrt, named);
    return { model: this.model, gradients: named, unreached, nodesAdded: this.nodesAdded };
  }

  /** dLoss/dLoss: ones shaped like the loss. */
  private seed(loss: Value): Value {
    const dtype = dtypeOf(loss) as DType;
    const shape = (loss.type as { shape?: Shape }).shape;
    if (shape && shape.length === 0) return this.scalar(1, dtype);
    return this.emit(undefined, 'Expand', [this.scalar(1, dtype), this.shapeOf(loss)], 1)[0];
  }

  /** The summed gradient of `v` (once all its consumers have contributed). */
  final(v: Value): Value | undefined {
    if (this.finals.has(v)) return this.finals.get(v);
    const parts = this.contributions.get(v) ?? [];
    let sum: Value | undefined;
    if (parts.length === 1) sum = parts[0];
    else if (parts.length === 2) sum = this.emit(undefined, 'Add', parts, 1)[0];
    else if (parts.length > 2) sum = this.emit(undefined, 'Sum', parts, 1)[0];
    if (sum && parts.length > 1) this.origin.set(sum, this.origin.get(parts[0]) as Node);
    this.finals.set(v, sum);
    return sum;
  }

  contribute(v: Value, g: Value, from: Node): void {
    if (this.finals.has(v)) throw new Error(`gradient of ${v.name} is already summed; ${from.describe()} contributes too late`);
    if (!this.origin.has(g)) this.origin.set(g, from);
    const list = this.contributions.get(v);
    if (list) list.push(g);
    else this.contributions.set(v, [g]);
  }

  emit(
    from: Node | undefined,
    opType: string,
    inputs: ReadonlyArray<Value | null>,
    outputs: number,
    attrs: Record<string, AttrInput> = {},
  ): Value[] {
    const prefix = from ? `${label(from)}_grad` : 'grad';
    const converted = Object.entries(attrs).map(([k, v]): [string, Attribute] => [k, this.attribute(opType, k, v)]);
    const node = this.graph.addNode(opType, inputs, outputs, { name: this.nodeName(`${prefix}/${opType}`), attrs: converted });
    this.nodesAdded++;
    return node.outputs as Value[];
  }

  private attribute(opType: string, name: string, v: AttrInput): Attribute {
    if (isAttribute(v)) return v;
    const declared = this.registry.get('', opType)?.attrs?.[name];
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

  scalar(value: number, dtype: DType): Value {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
    let v = this.scalars.get(key);
    if (!v) {
      v = this.graph.addInitializer(`grad_const_${dtype}`, Tensor.from(dtype, [], [value]));
      this.scalars.set(key, v);
    }
    return v;
  }

  ints(values: readonly number[]): Value {
    const key = values.join(',');
    let v = this.intConsts.get(key);
    if (!v) {
      v = this.graph.addInitializer('grad_ints', Tensor.from('int64', [values.length], [...values]));
      this.intConsts.set(key, v);
    }
    return v;
  }

  shapeOf(v: Value): Value {
    const shape = (v.type as { shape?: Shape } | undefined)?.shape;
    if (shape?.every((d) => typeof d === 'number')) return this.ints(shape as number[]);
    let s = this.shapes.get(v);
    if (!s) {
      s = this.emit(undefined, 'Shape', [v], 1)[0];
      this.shapes.set(v, s);
    }
    return s;
  }

  /** Gives each gradient its name (`conv1.weight_grad`) and makes it a graph output. */
  private name(wrt: Value[], gradients: Value[]): Value[] {
    const g = this.graph;
    const claimed = new Set<Value>();
    return gradients.map((d, i) => {
      const want = this.options.gradName?.(wrt[i]) ?? `${wrt[i].name}_grad`;
      let out = d;
      const own = d.producer && !claimed.has(d) && !d.isGraphOutput && !d.isGraphInput && !d.initializer && !wrt.includes(d);
      if (own) {
        if (d.name !== want) g.renameValue(d, g.freshName(want));
      } else {
        out = this.emit(undefined, 'Identity', [d], 1)[0];
        g.renameValue(out, g.freshName(want));
      }
      claimed.add(out);
      if (this.options.addOutputs ?? true) g.addOutput(out);
      return out;
    });
  }

  /** Types the new values and checks that every gradient has its value's shape and dtype. */
  private check(wrt: Value[], gradients: Value[]): void {
    const report = inferShapes(this.model, { registry: this.registry });
    const first = report.problems[0];
    if (first) throw new Error(`gradient graph: shape inference failed at ${first.node}: ${first.message}`);
    const pairs: Array<[Value, Value]> = [...this.finals].filter((p): p is [Value, Value] => p[1] !== undefined);
    wrt.forEach((w, i) => {
      pairs.push([w, gradients[i]]);
    });
    for (const [v, d] of pairs) {
      const a = v.type;
      const b = d.type;
      if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor') continue;
      // The gradient of a quantized (integer) value is that of the real number it encodes.
      const sameDtype = !a.dtype || !b.dtype || a.dtype === b.dtype || !isFloat(a.dtype);
      const sa = a.shape;
      const sb = b.shape;
      const sameShape =
        !sa || !sb || (sa.length === sb.length && sa.every((x, k) => x === null || sb[k] === null || x === sb[k] || dimEquals(x, sb[k])));
      if (!sameDtype || !sameShape) {
        const from = this.origin.get(d);
        throw new Error(
          `gradient of ${v.name} (${formatType(a)}) has type ${formatType(b)}${from ? `, from the rule of ${from.describe()}` : ''}`,
        );
      }
    }
  }
}

/** The GradContext a rule sees for one node. */
class Ctx implements GradContext {
  readonly node: Node;
  readonly opset: number;
  private readonly ad: Autodiff;
  private readonly grads: Array<Value | undefined>;

  constructor(ad: Autodiff, node: Node, grads: Array<Value | undefined>) {
    this.ad = ad;
    this.node = node;
    this.opset = ad.opset;
    this.grads = grads;
  }

  input(i: number): Value {
    const v = this.node.inputs[i];
    if (!v) return this.fail(`input ${i} is missing`);
    return v;
  }

  optionalInput(i: number): Value | undefined {
    return this.node.inputs[i] ?? undefined;
  }

  output(i: number): Value {
    const v = this.node.outputs[i];
    if (!v) return this.fail(`output ${i} is missing`);
    return v;
  }

  grad(i: number): Value | undefined {
    return this.grads[i];
  }

  needs(i: number): boolean {
    const v = this.node.inputs[i];
    return !!v && this.ad.varying.has(v);
  }

  setGrad(i: number, g: Value): void {
    if (!this.needs(i)) throw new Error(`rule of ${this.node.describe()} sets a gradient for input ${i}, which needs none`);
    this.ad.contribute(this.input(i), g, this.node);
  }

  dtype(v: Value): DType {
    const d = dtypeOf(v);
    if (!d) return this.fail(`the element type of ${v.name} is unknown`);
    return d;
  }

  shape(v: Value): Shape {
    const s = (v.type as { shape?: Shape } | undefined)?.shape;
    if (!s) return this.fail(`the shape of ${v.name} is unknown (give the inputs fixed shapes)`);
    return s;
  }

  staticShape(v: Value, why: string): number[] {
    const s = this.shape(v);
    if (!s.every((d) => typeof d === 'number'))
      return this.fail(`${why} needs the shape of ${v.name} to be known, but it is ${formatShape(s)}`);
    return s as number[];
  }

  constant(v: Value | undefined | null): Tensor | undefined {
    return v ? constantOf(v) : undefined;
  }

  op(opType: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, AttrInput> = {}): Value {
    return this.ad.emit(this.node, opType, inputs, 1, attrs)[0];
  }

  opMulti(opType: string, inputs: ReadonlyArray<Value | null>, outputs: number, attrs: Record<string, AttrInput> = {}): Value[] {
    return this.ad.emit(this.node, opType, inputs, outputs, attrs);
  }

  scalar(value: number, dtype: DType): Value {
    return this.ad.scalar(value, dtype);
  }

  ints(values: readonly number[]): Value {
    return this.ad.ints(values);
  }

  tensor(t: Tensor, base = 'grad_const'): Value {
    return this.ad.graph.addInitializer(`${label(this.node)}_${base}`, t);
  }

  shapeOf(v: Value): Value {
    return this.ad.shapeOf(v);
  }

  reshapeTo(x: Value, like: Value, xShape?: Shape): Value {
    const target = this.shape(like);
    const dims: number[] = [];
    let free = -1;
    for (let i = 0; i < target.length; i++) {
      const d = target[i];
      if (typeof d === 'number') dims.push(d);
      else if (xShape && i < xShape.length && xShape[i] !== null && dimEquals(xShape[i], d)) dims.push(0);
      else if (free < 0) {
        free = i;
        dims.push(-1);
      } else return this.op('Reshape', [x, this.shapeOf(like)]);
    }
    // A literal 0 in the target would copy x's dim under allowzero=0; an empty tensor takes the dynamic form.
    if (target.some((d) => d === 0)) return this.op('Reshape', [x, this.shapeOf(like)]);
    return this.op('Reshape', [x, this.ints(dims)]);
  }

  sumTo(g: Value, gShape: Shape, like: Value): Value {
    const target = this.shape(like);
    const lead = gShape.length - target.length;
    if (lead < 0) return this.fail(`cannot reduce a gradient of shape ${formatShape(gShape)} to ${formatShape(target)}`);
    const axes: number[] = [];
    for (let i = 0; i < lead; i++) axes.push(i);
    let kept = false;
    for (let i = 0; i < target.length; i++) {
      const t = target[i];
      const o = gShape[i + lead];
      if (t === o || (t !== null && o !== null && dimEquals(t, o))) continue;
      if (t === 1) {
        axes.push(i + lead);
        kept = true;
        continue;
      }
      // A dim other than 1 does not broadcast: the output has it too; an output dim of 1 had 1s only.
      if (typeof t === 'number' || o === 1) continue;
      return this.fail(`cannot tell whether ${like.name} (${formatShape(target)}) was broadcast to ${formatShape(gShape)}`);
    }
    if (axes.length === 0) return g;
    if (!kept) return this.reduce('ReduceSum', g, axes, false);
    const r = this.reduce('ReduceSum', g, axes, true);
    if (lead === 0) return r;
    return this.op('Squeeze', [r, this.ints(axes.slice(0, lead))]);
  }

  reduce(op: string, x: Value, axes: readonly number[], keepdims: boolean): Value {
    const keep = keepdims ? 1 : 0;
    if (op === 'ReduceSum' || this.opset >= 18) return this.op(op, [x, this.ints(axes)], { keepdims: keep });
    return this.op(op, [x], { axes: [...axes], keepdims: keep });
  }

  zerosLike(like: Value): Value {
    return this.op('ConstantOfShape', [this.shapeOf(like)], { value: Tensor.zeros(this.dtype(like), [1]) });
  }

  forwardOutput(i: number, type?: ValueType): Value {
    const existing = this.node.outputs[i];
    if (existing) return existing;
    const g = this.ad.graph;
    while (this.node.outputs.length < i) this.node.outputs.push(null);
    const v = g.createValue(`${label(this.node)}_out${i}`, type);
    v.producer = this.node;
    this.node.outputs[i] = v;
    return v;
  }

  fail(message: string): never {
    throw badInput(`cannot differentiate ${this.node.describe()}: ${message}`);
  }
}
