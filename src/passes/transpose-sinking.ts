/**
 * Transpose sinking: moves Transposes toward the graph outputs, through ops that do not care
 * about the order of axes (or only need an axis renumbered), until they meet another Transpose
 * and merge with it — cancelling when the two are inverse — or reach an op that must see the
 * layout it was written for.
 *
 * The algorithm, for a Transpose T = Transpose(x, p) (y.shape[i] = x.shape[p[i]]):
 *
 * 1. Every consumer of T must be able to take it; otherwise T stays where it is. A Transpose
 *    that reads a constant (constant folding's) or has consumers in a subgraph stays too; one
 *    that is a graph output stays to give it, and only Transposes reading it merge with it.
 *    A consumer takes T when it is
 *    - another Transpose: the two merge into Transpose(x, composed), or into nothing;
 *    - an op with a layout rule (LAYOUT_RULES below) that accepts `p`: the rule says which
 *      inputs carry the permuted tensor, and how the op's attributes and axis inputs change to
 *      read x instead (Concat/Split/Softmax axis a → p[a], Reduce axes, Pad pads, Slice axes,
 *      per-axis quantization axis). Each of those inputs must then be T itself, another
 *      Transpose by the same `p` (it is read through), a constant of rank ≤ rank(x) (rewritten
 *      as a new constant, expanded to full rank and permuted by p⁻¹; one-element constants stay
 *      as they are), or a value whose shape is all ones (broadcasts alike in any layout).
 * 2. The move is made only when it pays: it removes T, the same-perm Transposes on other
 *    operands that nothing else reads, and merged Transposes that cancel, and it adds one
 *    Transpose per used output of each consumer (a Transpose on an output whose dims are all
 *    1 is not needed). It is made when it removes more than it adds, or when each added
 *    Transpose leads — through ops that could take it in turn — to another Transpose it can
 *    merge with (a bounded look-ahead, as onnxruntime's transpose optimizer does). So the
 *    number of Transposes on any path never grows, moves with nothing to gain are not made
 *    (they would turn ReduceMean over the last axis into a reduction over another one and hide
 *    fusion patterns for nothing), and a Transpose fanning out into a Split is pushed only
 *    where its copies will cancel.
 * 3. The consumer is rewritten in place to read x (its node keeps its name); each of its
 *    outputs y gets a new value in x's layout, and a new Transpose by the rule's output perm
 *    (p for rank-preserving ops; a reduced perm for reductions without keepdims) produces the
 *    old y — so graph outputs keep their names and types. Then the new Transposes (and merged
 *    ones) are sunk in turn, in the same rewrite, so a Transpose travels the whole way in one
 *    round rather than one op per round.
 *
 * A Transpose of a tensor whose dims are all 1 changes nothing and goes (a reduction over every
 * axis leaves one behind). Moves only go downstream and merges only remove nodes, so this
 * terminates.
 *
 * Extending it (exporters): `transposeSinkingWith(rules)` builds the same pass with extra
 * layout rules, keyed by op type (`Conv`) or, outside the default ONNX domain,
 * `domain.opType`. A rule names the inputs that carry the layout and, given the perm of the
 * Transpose the op would read through, returns the edit that makes it read the un-transposed
 * tensor plus the perms to put back on its outputs — without touching the node until `edit` is
 * called (the look-ahead calls `remap` on nodes it does not change). The TFLite/NCNN exporters,
 * whose convolutions take NHWC, declare Conv (and pooling, resize…) transparent for the
 * NHWC→NCHW perm [0,3,1,2] with an `edit` that turns the node into their NHWC op, e.g.:
 *
 *   const nhwcConv: LayoutRule = {
 *     layoutInputs: () => [0],
 *     remap: (node, perm) => samePerm(perm, [0, 3, 1, 2])
 *       ? { edit: (n) => { n.domain = 'mobilize.nhwc'; }, outputPerms: [[0, 3, 1, 2]] } : undefined,
 *   };
 *   const sinking = transposeSinkingWith({ Conv: nhwcConv });
 *
 * and run it after layout-nhwc's boundary transposes.
 */
import { normAxis } from '../ir/dims.js';
import { isOnnxDomain, type Node, type Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { transposeTensor } from '../ops/shape.js';
import { addConstant, removeIfDead } from './edit.js';
import { canReplace, constantNumbers, constantValue, isConstant, producedBy, rankOf, staticShape } from './match.js';
import { type Pass, type PassContext, pattern } from './pass.js';
import { composePerms, invertPerm, isIdentityPerm, samePerm, transposePerm, unpermuteShape } from './perm.js';

// ---------------------------------------------------------------- layout rules

/** What a node must change to read x instead of Transpose(x, perm). */
export interface LayoutRemap {
  /** Applies the attribute and axis-input changes; called once the move is decided. */
  edit?: (node: Node) => void;
  /**
   * Perm of the Transpose that gives back each output in its old layout; null when none is
   * needed. Default: the input's perm for every output (rank-preserving ops).
   */
  outputPerms?: ReadonlyArray<readonly number[] | null>;
}

export interface LayoutRule {
  /** Input slots that carry the permuted tensor; the others (axes, scales, shapes) are not touched. */
  layoutInputs(node: Node): readonly number[];
  /** The changes for `perm`, or undefined when the node cannot take it. Must not modify the node. */
  remap(node: Node, perm: readonly number[], ctx: PassContext): LayoutRemap | undefined;
}

const first = (): readonly number[] => [0];
const every = (n: Node): readonly number[] => n.inputs.map((_, i) => i);

/** Elementwise ops whose other inputs are parameters (Clip's bounds, CastLike's type source). */
const unary: LayoutRule = { layoutInputs: first, remap: () => ({}) };

/** Broadcasting elementwise ops: every input carries the layout. */
const broadcast: LayoutRule = { layoutInputs: every, remap: () => ({}) };

const setInt = (name: string, value: number) => (n: Node) => {
  n.attrs.set(name, { type: 'int', value });
};

/** An op with one `axis` attribute that keeps the rank (Concat, Split, Softmax at opset ≥ 13). */
function axisRule(fallback: number | undefined, inputs: (n: Node) => readonly number[], minOpset = 1): LayoutRule {
  return {
    layoutInputs: inputs,
    remap(node, perm, ctx) {
      if (ctx.opset < minOpset) return undefined;
      const a = node.int('axis') ?? fallback;
      const axis = a === undefined ? undefined : normAxis(a, perm.length);
      return axis === undefined ? undefined : { edit: setInt('axis', perm[axis]) };
    },
  };
}

/**
 * Softmax/LogSoftmax before opset 13 work on the input flattened to 2-D at `axis`: the result
 * is the same after a perm that keeps the axes before `axis` before it (the normalized block
 * holds the same elements, in another order, which a sum does not see).
 */
const softmaxRule: LayoutRule = {
  layoutInputs: first,
  remap(node, perm, ctx) {
    const r = perm.length;
    const a = normAxis(node.int('axis', ctx.opset >= 13 ? -1 : 1), r);
    if (a === undefined) return undefined;
    if (ctx.opset >= 13) return { edit: setInt('axis', perm[a]) };
    if (node.opType === 'Hardmax') return undefined; // ties go to the first in order: order matters
    return perm.every((p, i) => i < a === p < a) ? {} : undefined;
  },
};

/** Output perm after removing the reduced axes (keepdims=0); null when no Transpose is needed. */
function reducedPerm(perm: readonly number[], reduced: ReadonlySet<number>): number[] | null {
  const keptX = perm.map((_, j) => j).filter((j) => !reduced.has(j));
  const q = perm.filter((_, i) => !reduced.has(perm[i])).map((j) => keptX.indexOf(j));
  return q.length <= 1 || isIdentityPerm(q) ? null : q;
}

/** Remap for reducing `axes` (of the permuted tensor) with or without keepdims. */
function reduceRemap(
  perm: readonly number[],
  axes: readonly number[],
  keep: boolean,
  set: (n: Node, axes: number[]) => void,
): LayoutRemap | undefined {
  const norm = axes.map((a) => normAxis(a, perm.length));
  if (norm.some((a) => a === undefined)) return undefined;
  const mapped = [...new Set((norm as number[]).map((a) => perm[a]))].sort((a, b) => a - b);
  const outputPerms = [keep ? (mapped.length === perm.length ? null : perm) : reducedPerm(perm, new Set(mapped))];
  return { edit: (n) => set(n, mapped), outputPerms };
}

/** Reduce* ops: axes from the attribute, or (from `inputSince`) a constant second input. */
function reduceRule(inputSince: number): LayoutRule {
  return {
    layoutInputs: first,
    remap(node, perm, ctx) {
      const keep = node.int('keepdims', 1) !== 0;
      const all = perm.map((_, i) => i);
      if (ctx.opset < inputSince) {
        const axes = node.ints('axes') ?? [];
        return reduceRemap(perm, axes.length > 0 ? axes : all, keep, (n, a) => {
          if (axes.length > 0) n.attrs.set('axes', { type: 'ints', value: a });
        });
      }
      const given = node.input(1);
      const axes = given ? constantNumbers(given) : [];
      if (!axes) return undefined;
      if (axes.length === 0) {
        // No axes: identity with noop_with_empty_axes, else every axis.
        if (node.int('noop_with_empty_axes', 0) !== 0) return {};
        return reduceRemap(perm, all, keep, () => {});
      }
      const dtype = constantValue(given)?.dtype ?? 'int64';
      return reduceRemap(perm, axes, keep, (n, a) => {
        n.setInput(1, addConstant(n.graph, `${n.name || n.opType.toLowerCase()}_axes`, intTensor(dtype, a)));
      });
    },
  };
}

/** ArgMax/ArgMin: one `axis` attribute, keepdims. */
const argRule: LayoutRule = {
  layoutInputs: first,
  remap(node, perm) {
    return reduceRemap(perm, [node.int('axis', 0)], node.int('keepdims', 1) !== 0, (n, a) => setInt('axis', a[0])(n));
  },
};

function intTensor(dtype: string, values: readonly number[]): Tensor {
  // Axes/pads inputs are int64 (Slice's may be int32, matching its starts).
  return Tensor.from(dtype === 'int32' ? 'int32' : 'int64', [values.length], [...values]);
}

/** Pad: pads (attribute before opset 11, constant input after) follow their axes; so do explicit axes (opset 18). */
const padRule: LayoutRule = {
  layoutInputs: first,
  remap(node, perm, ctx) {
    const r = perm.length;
    const movePads = (pads: readonly number[]): number[] | undefined => {
      if (pads.length !== 2 * r) return undefined;
      const out = new Array<number>(2 * r);
      for (let i = 0; i < r; i++) {
        out[perm[i]] = pads[i];
        out[r + perm[i]] = pads[r + i];
      }
      return out;
    };
    if (ctx.opset < 11) {
      const pads = node.ints('pads');
      const moved = pads && movePads(pads);
      return moved ? { edit: (n) => n.attrs.set('pads', { type: 'ints', value: moved }) } : undefined;
    }
    const axesIn = ctx.opset >= 18 ? node.input(3) : null;
    if (axesIn) {
      const axes = constantNumbers(axesIn)?.map((a) => normAxis(a, r));
      if (!axes || axes.some((a) => a === undefined)) return undefined;
      const mapped = (axes as number[]).map((a) => perm[a]);
      const dtype = constantValue(axesIn)?.dtype ?? 'int64';
      return { edit: (n) => n.setInput(3, addConstant(n.graph, `${axesIn.name}_perm`, intTensor(dtype, mapped))) };
    }
    const padsIn = node.input(1);
    const pads = constantNumbers(padsIn);
    const moved = pads && movePads(pads);
    if (!padsIn || !moved) return undefined;
    return { edit: (n) => n.setInput(1, addConstant(n.graph, `${padsIn.name}_perm`, intTensor('int64', moved))) };
  },
};

/** Slice: the sliced axes (attribute before opset 10, optional constant input after) are renumbered. */
const sliceRule: LayoutRule = {
  layoutInputs: first,
  remap(node, perm, ctx) {
    const r = perm.length;
    const mapAxes = (axes: readonly number[]): number[] | undefined => {
      const norm = axes.map((a) => normAxis(a, r));
      return norm.some((a) => a === undefined) ? undefined : (norm as number[]).map((a) => perm[a]);
    };
    if (ctx.opset < 10) {
      const starts = node.ints('starts');
      if (!starts) return undefined;
      const mapped = mapAxes(node.ints('axes') ?? starts.map((_, i) => i));
      return mapped ? { edit: (n) => n.attrs.set('axes', { type: 'ints', value: mapped }) } : undefined;
    }
    const starts = node.input(1);
    const axesIn = node.input(3);
    let axes: number[] | undefined;
    if (axesIn) {
      axes = constantNumbers(axesIn);
    } else {
      const n = constantNumbers(starts)?.length ?? staticShape(starts)?.[0];
      axes = n === undefined ? undefined : Array.from({ length: n }, (_, i) => i);
    }
    const mapped = axes && mapAxes(axes);
    if (!mapped) return undefined;
    const dtype = (axesIn && constantValue(axesIn)?.dtype) ?? (starts?.type?.kind === 'tensor' ? starts.type.dtype : undefined) ?? 'int64';
    const base = axesIn?.name ?? `${node.name || 'slice'}_axes`;
    return { edit: (n) => n.setInput(3, addConstant(n.graph, `${base}_perm`, intTensor(dtype, mapped))) };
  },
};

/** QuantizeLinear/DequantizeLinear: per-tensor as is; per-axis with the axis renumbered; blocked not at all. */
const quantRule: LayoutRule = {
  layoutInputs: first,
  remap(node, perm, ctx) {
    if (node.int('block_size', 0) !== 0) return undefined;
    const scale = node.input(1);
    const shape = scale?.type?.kind === 'tensor' ? scale.type.shape : undefined;
    if (!shape) return undefined;
    if (shape.length === 0 || (shape.length === 1 && shape[0] === 1)) return {};
    if (shape.length !== 1 || ctx.opset < 13) return undefined;
    const axis = normAxis(node.int('axis', 1), perm.length);
    return axis === undefined ? undefined : { edit: setInt('axis', perm[axis]) };
  },
};

const UNARY_OPS = (
  'Abs Neg Ceil Floor Round Sqrt Exp Log Reciprocal Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh ' +
  'Atanh Erf Sign Sigmoid Tanh Relu Softplus Softsign Mish HardSwish HardSigmoid LeakyRelu Elu Selu ' +
  'Celu ThresholdedRelu Shrink Gelu Not BitwiseNot IsNaN IsInf Identity Cast CastLike Clip'
).split(' ');

const BROADCAST_OPS = (
  'Add Sub Mul Div Pow Mod BitShift BitwiseAnd BitwiseOr BitwiseXor And Or Xor Equal Less LessOrEqual ' +
  'Greater GreaterOrEqual PRelu Where Sum Mean Max Min'
).split(' ');

const REDUCE_OPS = 'ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare'.split(' ');

/** The ops transpose-sinking moves Transposes through, by op type (default ONNX domain). */
export const LAYOUT_RULES: ReadonlyMap<string, LayoutRule> = new Map<string, LayoutRule>([
  ...UNARY_OPS.map((op): [string, LayoutRule] => [op, unary]),
  ...BROADCAST_OPS.map((op): [string, LayoutRule] => [op, broadcast]),
  ...REDUCE_OPS.map((op): [string, LayoutRule] => [op, reduceRule(18)]),
  ['ReduceSum', reduceRule(13)],
  ['ArgMax', argRule],
  ['ArgMin', argRule],
  ['Concat', axisRule(undefined, every)],
  ['Split', axisRule(0, first)],
  ['Softmax', softmaxRule],
  ['LogSoftmax', softmaxRule],
  ['Hardmax', softmaxRule],
  ['Pad', padRule],
  ['Slice', sliceRule],
  ['QuantizeLinear', quantRule],
  ['DequantizeLinear', quantRule],
]);

/** Rules exporters can reuse for their own ops. */
export const layoutRules = { unary, broadcast, axis: axisRule, reduce: reduceRule } as const;

// ---------------------------------------------------------------- planning a move

/** How one input of a consumer changes. */
type InputEdit = { index: number; to: Value } | { index: number; tensor: Tensor; base: string };

type ConsumerPlan =
  | { kind: 'merge'; node: Node; perm: number[] }
  | { kind: 'push'; node: Node; remap: LayoutRemap; inputs: InputEdit[]; outputPerms: Array<readonly number[] | null> };

interface Plan {
  t: Node;
  x: Value;
  perm: number[];
  consumers: ConsumerPlan[];
  /** Other same-perm Transposes read through, to remove if nothing else reads them. */
  others: Node[];
  /** The Transpose changes nothing (its input's dims are all 1): its readers read x. */
  drop?: boolean;
}

type Rules = ReadonlyMap<string, LayoutRule>;

function ruleKey(n: Node): string {
  return isOnnxDomain(n.domain) ? n.opType : `${n.domain}.${n.opType}`;
}

function shapeOf(v: Value | null): Shape | undefined {
  const t = v?.type;
  return t?.kind === 'tensor' ? t.shape : undefined;
}

const allOnes = (s: Shape | undefined): boolean => !!s && s.every((d) => d === 1);

/** A constant in the layout of x, for an operand that broadcast against Transpose(x, perm). */
function permutedConstant(c: Tensor, perm: readonly number[]): Tensor {
  const full = c.rank < perm.length ? c.reshape([...new Array<number>(perm.length - c.rank).fill(1), ...c.dims]) : c;
  return transposeTensor(full, invertPerm(perm));
}

/**
 * Plans pushing Transpose(x, perm) through `node`, one of the readers of `via`: each layout input
 * must be `via`, a same-perm Transpose, a constant or an all-ones value; inputs that do not carry
 * the layout must not read `via`.
 */
function planPush(
  node: Node,
  via: Value,
  x: Value,
  perm: number[],
  rules: Rules,
  ctx: PassContext,
  others: Set<Node>,
): ConsumerPlan | undefined {
  if (node.graph !== via.graph || node.subgraphs().length > 0) return undefined;
  if (node.opType === 'Transpose' && isOnnxDomain(node.domain)) {
    const p2 = transposePerm(node);
    return p2 && p2.length === perm.length && node.input(0) === via ? { kind: 'merge', node, perm: composePerms(perm, p2) } : undefined;
  }
  const rule = rules.get(ruleKey(node));
  if (!rule) return undefined;
  const remap = rule.remap(node, perm, ctx);
  if (!remap) return undefined;
  const layout = new Set(rule.layoutInputs(node));
  const r = perm.length;
  const inputs: InputEdit[] = [];
  for (let i = 0; i < node.inputs.length; i++) {
    const v = node.inputs[i];
    if (!v) continue;
    if (!layout.has(i)) {
      if (v === via) return undefined;
      continue;
    }
    if (v === via) {
      inputs.push({ index: i, to: x });
      continue;
    }
    const other = producedBy(v, 'Transpose');
    const otherPerm = other && transposePerm(other);
    const otherIn = other?.input(0);
    if (other && otherPerm && otherIn && otherIn !== via && samePerm(otherPerm, perm) && other.graph === node.graph) {
      inputs.push({ index: i, to: otherIn });
      others.add(other);
      continue;
    }
    const c = constantValue(v);
    if (c) {
      if (c.rank > r) return undefined;
      if (c.size !== 1) inputs.push({ index: i, tensor: permutedConstant(c, perm), base: v.name });
      continue;
    }
    const s = shapeOf(v);
    if (!s || s.length > r || !allOnes(s)) return undefined;
  }
  const outputPerms = remap.outputPerms ? [...remap.outputPerms] : node.outputs.map(() => perm);
  if (outputPerms.length !== node.outputs.length) return undefined;
  // A Transpose of a tensor whose dims are all 1 changes nothing.
  node.outputs.forEach((o, k) => {
    const q = outputPerms[k];
    if (!o || !q || isIdentityPerm(q) || allOnes(shapeOf(o))) outputPerms[k] = null;
  });
  return { kind: 'push', node, remap, inputs, outputPerms };
}

const used = (v: Value | null): boolean => !!v && (v.uses.length > 0 || v.isGraphOutput);

/** Look-ahead budget: nodes visited per question. */
const LOOKAHEAD = 256;

/**
 * True when a Transpose by `perm` put on `v` could be pushed on (every reader could take it)
 * until it meets another Transpose.
 */
function leadsToTranspose(v: Value, perm: number[], rules: Rules, ctx: PassContext, budget: { left: number }): boolean {
  if (v.uses.length === 0 || --budget.left < 0) return false;
  // A graph output keeps its Transpose; Transposes reading it can still merge with it.
  if (v.isGraphOutput) return v.consumers.some((n) => planPush(n, v, v, perm, rules, ctx, new Set())?.kind === 'merge');
  const next: Array<[Value, number[]]> = [];
  let meets = false;
  for (const node of new Set(v.consumers)) {
    const plan = planPush(node, v, v, perm, rules, ctx, new Set());
    if (!plan) return false;
    if (plan.kind === 'merge') {
      meets = true;
      continue;
    }
    plan.node.outputs.forEach((o, k) => {
      const q = plan.outputPerms[k];
      if (o && q && used(o)) next.push([o, [...q]]);
    });
  }
  return meets || next.some(([o, q]) => leadsToTranspose(o, q, rules, ctx, budget));
}

function planSink(t: Node, rules: Rules, ctx: PassContext): Plan | undefined {
  const y = t.outputs[0];
  const x = t.input(0);
  if (!x || !y || t.outputs.length !== 1 || isConstant(x)) return undefined;
  const perm = transposePerm(t);
  if (!perm || (rankOf(x) !== undefined && rankOf(x) !== perm.length)) return undefined;
  if (allOnes(shapeOf(x)) && canReplace(y, x)) return { t, x, perm, consumers: [], others: [], drop: true };
  if (y.uses.length === 0) return undefined;
  const others = new Set<Node>();
  const consumers: ConsumerPlan[] = [];
  for (const node of new Set(y.consumers)) {
    const plan = planPush(node, y, x, perm, rules, ctx, others);
    if (y.isGraphOutput) {
      // The Transpose stays to give the graph output; only Transposes reading it merge with it.
      if (plan?.kind === 'merge') consumers.push(plan);
      continue;
    }
    if (!plan) return undefined;
    consumers.push(plan);
  }
  if (y.isGraphOutput) return consumers.length > 0 ? { t, x, perm, consumers, others: [] } : undefined;
  // What the move removes and adds.
  others.delete(t);
  const rewired = new Set(consumers.map((c) => c.node));
  let removed = 1;
  for (const o of others) {
    const out = o.outputs[0];
    if (out && !out.isGraphOutput && out.uses.every((u) => rewired.has(u.node))) removed++;
  }
  let added = 0;
  const fresh: Array<[Value, readonly number[]]> = [];
  for (const c of consumers) {
    if (c.kind === 'merge') {
      if (isIdentityPerm(c.perm)) removed++;
      continue;
    }
    c.node.outputs.forEach((o, k) => {
      const q = c.outputPerms[k];
      if (o && q && used(o)) {
        added++;
        fresh.push([o, q]);
      }
    });
  }
  if (added >= removed) {
    const budget = { left: LOOKAHEAD };
    if (!fresh.every(([o, q]) => leadsToTranspose(o, [...q], rules, ctx, budget))) return undefined;
  }
  return { t, x, perm, consumers, others: [...others] };
}

// ---------------------------------------------------------------- making the move

/** Carries out a plan; returns the Transposes it created or changed, to sink next. */
function execute(plan: Plan): Node[] {
  const { t, x } = plan;
  const g = t.graph;
  if (plan.drop) {
    g.replaceAllUses(t.output(), x);
    removeIfDead(t);
    return [];
  }
  const next: Node[] = [];
  for (const c of plan.consumers) {
    const node = c.node;
    if (c.kind === 'merge') {
      if (isIdentityPerm(c.perm)) {
        if (canReplace(node.output(), x)) {
          node.setInput(0, x);
          g.replaceAllUses(node.output(), x);
          removeIfDead(node);
        } else {
          node.opType = 'Identity';
          node.attrs.clear();
          node.setInput(0, x);
        }
      } else {
        node.setInput(0, x);
        node.attrs.set('perm', { type: 'ints', value: c.perm });
        next.push(node);
      }
      continue;
    }
    for (const e of c.inputs) node.setInput(e.index, 'to' in e ? e.to : addConstant(g, `${e.base}_perm`, e.tensor));
    c.remap.edit?.(node);
    node.outputs.forEach((y, k) => {
      const q = c.outputPerms[k];
      if (!y || !q) return;
      // The value in x's layout; typed when y's element type is known (an untyped value waits for inference).
      const t0 = y.type;
      const shape = t0?.kind === 'tensor' && t0.shape ? unpermuteShape(t0.shape, q) : new Array<null>(q.length).fill(null);
      const type = t0?.kind === 'tensor' && t0.dtype ? { kind: 'tensor' as const, dtype: t0.dtype, shape } : undefined;
      const inner = g.createValue(`${y.name}_${q.join('')}`, type);
      inner.producer = node;
      node.outputs[k] = inner;
      if (!used(y)) {
        // Nobody reads it: no Transpose, and the old value (in the old layout) goes.
        y.producer = undefined;
        g.releaseName(y.name);
        return;
      }
      const back = g.addNode('Transpose', [inner], [], { after: node, attrs: [['perm', { type: 'ints', value: [...q] }]] });
      back.outputs.push(y);
      y.producer = back;
      next.push(back);
    });
  }
  removeIfDead(t);
  for (const o of plan.others) removeIfDead(o);
  return next;
}

/** Most moves one rewrite makes (a guard; real graphs need far fewer). */
const MAX_MOVES = 100_000;

/** The transpose-sinking pass with extra layout rules (see the header: how exporters extend it). */
export function transposeSinkingWith(extra: ReadonlyMap<string, LayoutRule> | Readonly<Record<string, LayoutRule>> = {}): Pass {
  const rules: Rules = new Map([...LAYOUT_RULES, ...(extra instanceof Map ? extra : Object.entries(extra))]);
  return pattern<Plan>({
    name: 'transpose-sinking',
    description: 'moves Transposes down through elementwise, axis and reduction ops until they cancel against another',
    level: 'basic',
    roots: ['Transpose'],
    match: (t, ctx) => planSink(t, rules, ctx),
    apply(plan, ctx) {
      const queue = execute(plan);
      for (let moves = 0; queue.length > 0 && moves < MAX_MOVES; moves++) {
        const t = queue.pop() as Node;
        if (t.removed || t.opType !== 'Transpose') continue;
        const p = planSink(t, rules, ctx);
        if (p) queue.push(...execute(p));
      }
    },
  });
}

export const transposeSinking = transposeSinkingWith();
