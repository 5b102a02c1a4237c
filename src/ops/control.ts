/**
 * Control flow and container operators: If, Loop, Scan (shape rules and kernels), and the
 * sequence and optional operators (shape rules only: the reference interpreter carries tensors,
 * not sequences). Subgraph rules run the body through the engine with the types the node feeds
 * it; loop-carried types are settled by re-inferring the body until they stop changing.
 * Spec: https://onnx.ai/onnx/operators/
 */
import { dimEquals, normAxis } from '../ir/dims.js';
import { type DType, dtypeFromCode } from '../ir/dtype.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import { type Dim, type Shape, sameType, type TensorType, tensorType, type ValueType } from '../ir/types.js';
import { constantNodeValue } from './constants.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { transposeTensor } from './shape.js';
import { axisOf, numbers, takeElements } from './util.js';

// ---------------------------------------------------------------- type joins

/** The least type that covers both: equal dims kept, differing dims unknown, differing ranks unknown. */
function joinTypes(a: ValueType | undefined, b: ValueType | undefined): ValueType | undefined {
  if (!a || !b || a.kind !== b.kind) return undefined;
  switch (a.kind) {
    case 'tensor':
    case 'sparse_tensor': {
      const bt = b as TensorType;
      const dtype = a.dtype === bt.dtype ? a.dtype : undefined;
      if (!a.shape || !bt.shape || a.shape.length !== bt.shape.length) return { kind: a.kind, dtype };
      const other = bt.shape;
      return { kind: a.kind, dtype, shape: a.shape.map((d, i) => (d === other[i] || dimEquals(d, other[i]) ? d : null)) };
    }
    case 'sequence':
    case 'optional':
      return { kind: a.kind, elem: joinTypes(a.elem, (b as typeof a).elem) };
    default:
      return sameType(a, b) ? a : undefined;
  }
}

/** Element dtype of a tensor type, looking through sequences and optionals (for consistency checks). */
function baseDtype(t: ValueType | undefined): DType | undefined {
  if (!t) return undefined;
  if (t.kind === 'tensor' || t.kind === 'sparse_tensor') return t.dtype;
  if (t.kind === 'sequence' || t.kind === 'optional') return baseDtype(t.elem);
  return undefined;
}

/**
 * The next loop-carried state type after one pass of the body: a dim the body is shown to change
 * (a different size or symbol) becomes unknown, and so does a rank it changes or loses. A dim
 * the body leaves unknown at the same rank keeps the input's value: exporters keep loop-carried
 * shapes fixed, and an unknown result (a Slice by the iteration number, say) is not evidence of
 * change. An optional state the body fills takes the filled type; another change of kind leaves
 * the state unknown.
 */
function widenCarried(input: ValueType | undefined, output: ValueType | undefined): ValueType | undefined {
  if (!input || !output) return input;
  if (input.kind !== output.kind) {
    // An optional state that the body fills (ONNX's loop16_seq_none: None in, a sequence out)
    // carries the body's type; any other change of kind is unknown.
    if (input.kind === 'optional' && (!input.elem || input.elem.kind === output.kind))
      return input.elem ? widenCarried(input.elem, output) : output;
    return undefined;
  }
  switch (input.kind) {
    case 'tensor':
    case 'sparse_tensor': {
      const out = output as TensorType;
      const dtype = input.dtype ?? out.dtype;
      if (!input.shape || !out.shape || out.shape.length !== input.shape.length) return { kind: input.kind, dtype };
      const o = out.shape;
      return { kind: input.kind, dtype, shape: input.shape.map((d, i) => (o[i] === null || dimEquals(d, o[i]) ? d : null)) };
    }
    case 'sequence':
    case 'optional':
      return { kind: input.kind, elem: widenCarried(input.elem, (output as typeof input).elem) };
    default:
      return input;
  }
}

// ---------------------------------------------------------------- subgraph inference

/** Every value of a body (nested subgraphs included) whose type inference may set. */
function bodyValues(g: Graph): Value[] {
  const out: Value[] = [...g.inputs];
  for (const n of g.nodes) {
    for (const v of n.outputs) if (v) out.push(v);
    for (const sg of n.subgraphs()) out.push(...bodyValues(sg));
  }
  return out;
}

/**
 * Infers a loop body (Loop, Scan) fed `inputsFor(state)`, whose outputs hold the carried state
 * from `outOffset`. Re-infers with wider state types until they settle; between passes the
 * body's types go back to what the file declared, so a too-narrow pass leaves nothing behind.
 * The settled state types then stand as declarations of the body's carried outputs for a last
 * pass, so values computed from them (scan outputs, typically) see the same shapes.
 */
function inferLoopBody(
  ctx: InferContext,
  body: Graph,
  carried: ReadonlyArray<ValueType | undefined>,
  inputsFor: (state: Array<ValueType | undefined>) => Array<ValueType | undefined>,
  outOffset: number,
): { state: Array<ValueType | undefined>; outputs: Array<ValueType | undefined> } {
  const values = bodyValues(body);
  const declared = new Map(values.map((v) => [v, v.type]));
  const reset = (): void => {
    for (const v of values) v.type = declared.get(v);
  };
  let state = [...carried];
  for (let pass = 0; ; pass++) {
    const outputs = ctx.inferSubgraph(body, inputsFor(state));
    const next = state.map((t, i) => widenCarried(t, outputs[outOffset + i]));
    if (pass < 3 && !next.every((t, i) => sameType(t, state[i]))) {
      reset();
      state = next;
      continue;
    }
    state = next;
    if (state.every((t, i) => sameType(t, outputs[outOffset + i]))) return { state, outputs };
    reset();
    state.forEach((t, i) => {
      const v = body.outputs[outOffset + i];
      if (t && v && declared.has(v) && !declared.get(v)) v.type = t;
    });
    return { state, outputs: ctx.inferSubgraph(body, inputsFor(state)) };
  }
}

function requireGraph(ctx: InferContext | KernelContext, name: string): Graph {
  const g = ctx.node.graphAttr(name);
  if (!g) return ctx.fail(`missing graph attribute "${name}"`);
  return g;
}

/** A per-iteration tensor type with a dim inserted at `axis` (scan outputs stack along a new axis). */
function withDimAt(t: ValueType | undefined, dim: Dim, axis: number): ValueType | undefined {
  // Scan outputs are tensors; anything else is left to the verifier.
  if (t?.kind !== 'tensor') return undefined;
  if (!t.shape) return tensorType(t.dtype);
  const shape = [...t.shape];
  shape.splice(axis, 0, dim);
  return tensorType(t.dtype, shape);
}

/** A tensor type with one axis removed (the element a scan sees of a scanned input). */
function withoutDim(t: TensorType | undefined, axis: number): ValueType | undefined {
  if (!t) return undefined;
  if (!t.shape) return tensorType(t.dtype);
  return tensorType(
    t.dtype,
    t.shape.filter((_, i) => i !== axis),
  );
}

// ---------------------------------------------------------------- If

const ifOp: OpSchema = {
  op: 'If',
  attrs: { then_branch: 'graph', else_branch: 'graph' },
  infer(ctx) {
    const thenTypes = ctx.inferSubgraph(requireGraph(ctx, 'then_branch'), []);
    const elseTypes = ctx.inferSubgraph(requireGraph(ctx, 'else_branch'), []);
    if (thenTypes.length !== elseTypes.length) {
      ctx.fail(`then_branch has ${thenTypes.length} outputs but else_branch has ${elseTypes.length}`);
    }
    if (ctx.numOutputs > thenTypes.length) ctx.fail(`If has ${ctx.numOutputs} outputs but its branches have ${thenTypes.length}`);
    // A constant condition picks the branch; otherwise the output covers both.
    const cond = ctx.constant(0);
    const taken = cond && cond.size === 1 ? (numbers(cond)[0] ? thenTypes : elseTypes) : undefined;
    for (let i = 0; i < ctx.numOutputs; i++) {
      const a = baseDtype(thenTypes[i]);
      const b = baseDtype(elseTypes[i]);
      if (a && b && a !== b) ctx.fail(`output ${i}: then_branch gives ${a} but else_branch gives ${b}`);
      const t = taken ? taken[i] : joinTypes(thenTypes[i], elseTypes[i]);
      if (t) ctx.setOutput(i, t);
    }
  },
  kernel(ctx) {
    const branch = numbers(ctx.input(0))[0] ? 'then_branch' : 'else_branch';
    return ctx.runSubgraph(requireGraph(ctx, branch), []);
  },
};

// ---------------------------------------------------------------- Loop

/** True when a body's condition output is its condition input passed through (or constant true). */
function conditionPassesThrough(body: Graph): boolean {
  let v: Value | undefined = body.outputs[0];
  while (v) {
    if (v === body.inputs[1]) return true;
    const p: Node | undefined = v.producer;
    if (!p) return false;
    if (p.opType === 'Identity') v = p.input(0) ?? undefined;
    else if (p.opType === 'Constant') {
      const t = constantNodeValue(p.attrs);
      return t !== undefined && t.size === 1 && numbers(t)[0] !== 0;
    } else return false;
  }
  return false;
}

/**
 * Number of iterations a Loop runs, when the graph fixes it: a constant trip count with a
 * condition that starts true and is never changed by the body, or a constant false condition.
 */
function loopTripCount(ctx: InferContext, body: Graph): number | undefined {
  const cond = ctx.hasInput(1) ? ctx.constant(1) : undefined;
  if (ctx.hasInput(1) && !cond) return undefined;
  if (cond && !numbers(cond)[0]) return 0;
  if (!ctx.hasInput(0)) return undefined;
  const m = ctx.constant(0);
  if (m?.size !== 1 || !conditionPassesThrough(body)) return undefined;
  return Math.max(0, numbers(m)[0]);
}

const loop: OpSchema = {
  op: 'Loop',
  attrs: { body: 'graph' },
  infer(ctx) {
    const body = requireGraph(ctx, 'body');
    const nCarried = ctx.numInputs - 2;
    const nScan = body.outputs.length - 1 - nCarried;
    if (nCarried < 0 || nScan < 0 || body.inputs.length !== nCarried + 2) {
      ctx.fail(`Loop has ${ctx.numInputs} inputs but its body takes ${body.inputs.length} and gives ${body.outputs.length}`);
    }
    const carried = Array.from({ length: nCarried }, (_, i) => ctx.inputType(i + 2));
    const { state, outputs } = inferLoopBody(ctx, body, carried, (st) => [tensorType('int64', []), tensorType('bool', []), ...st], 1);
    state.forEach((t, i) => {
      if (t) ctx.setOutput(i, t);
    });
    if (nScan === 0) return;
    // All scan outputs stack one element per iteration, so they share the leading dim.
    const trips = loopTripCount(ctx, body);
    const count: Dim = trips ?? ctx.freshDim('loop');
    for (let k = 0; k < nScan; k++) {
      const t = withDimAt(outputs[1 + nCarried + k], count, 0);
      if (t) ctx.setOutput(nCarried + k, t);
    }
  },
  kernel(ctx) {
    const body = requireGraph(ctx, 'body');
    const nCarried = ctx.numInputs - 2;
    const nScan = body.outputs.length - 1 - nCarried;
    const m = ctx.optional(0);
    const c = ctx.optional(1);
    const maxTrips = m ? numbers(m)[0] : Number.POSITIVE_INFINITY;
    let cond = c ? numbers(c)[0] !== 0 : true;
    let state: Tensor[] = Array.from({ length: nCarried }, (_, i) => ctx.input(i + 2));
    const scans: Tensor[][] = Array.from({ length: nScan }, () => []);
    for (let i = 0; i < maxTrips && cond; i++) {
      const outs = ctx.runSubgraph(body, [
        Tensor.from('int64', [], [i]),
        Tensor.from('bool', [], new Uint8Array([cond ? 1 : 0])),
        ...state,
      ]);
      cond = numbers(outs[0])[0] !== 0;
      state = outs.slice(1, 1 + nCarried);
      outs.slice(1 + nCarried).forEach((t, k) => {
        scans[k].push(t);
      });
    }
    return [...state, ...scans.map((ts, k) => stack(ctx, ts, body.outputs[1 + nCarried + k]))];
  },
};

// ---------------------------------------------------------------- kernel helpers: slicing and stacking

/** The slice of `t` at `index` along `axis`, with that axis removed. */
function sliceAt(t: Tensor, axis: number, index: number): Tensor {
  const dims = t.dims.filter((_, i) => i !== axis);
  const outer = shapeSize(t.dims.slice(0, axis));
  const inner = shapeSize(t.dims.slice(axis + 1));
  const n = t.dims[axis];
  const src = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) for (let r = 0; r < inner; r++) src[o * inner + r] = (o * n + index) * inner + r;
  return takeElements(t, dims, src);
}

/** Same-dtype tensors laid end to end as one tensor of shape `dims` (their elements in order). */
function joinTensors(ts: readonly Tensor[], dims: number[]): Tensor {
  if (ts[0].dtype === 'string')
    return Tensor.fromStrings(
      dims,
      ts.flatMap((t) => t.stringBytes),
    );
  const bytes = new Uint8Array(ts.reduce((a, t) => a + t.bytes.byteLength, 0));
  let at = 0;
  for (const t of ts) {
    bytes.set(t.bytes, at);
    at += t.bytes.byteLength;
  }
  return Tensor.fromBytes(ts[0].dtype, dims, bytes);
}

/** Tensors of equal shape stacked along a new leading axis. `declared` gives the element type when there are none. */
function stack(ctx: KernelContext, ts: Tensor[], declared: Value | undefined): Tensor {
  if (ts.length === 0) {
    const t = declared?.type;
    const elem = t?.kind === 'tensor' && t.shape?.every((d) => typeof d === 'number') ? (t.shape as number[]) : [];
    const dtype = t?.kind === 'tensor' && t.dtype ? t.dtype : 'float32';
    return Tensor.zeros(dtype, [0, ...elem]);
  }
  const first = ts[0];
  for (const t of ts) {
    if (t.dtype !== first.dtype || t.dims.join(',') !== first.dims.join(',')) {
      ctx.fail(`scan output elements differ: ${first} and ${t}`);
    }
  }
  return joinTensors(ts, [ts.length, ...first.dims]);
}

/** Moves axis 0 of `t` to position `axis` (scan outputs stacked first, then placed). */
function moveLeadingAxis(t: Tensor, axis: number): Tensor {
  if (axis === 0) return t;
  const perm: number[] = [];
  for (let i = 1; i < t.rank; i++) perm.push(i);
  perm.splice(axis, 0, 0);
  return transposeTensor(t, perm);
}

/** Pads a stack of per-step elements with zero elements up to `length` steps (Scan-8 short sequences). */
function padSteps(t: Tensor, length: number): Tensor {
  if (t.dims[0] >= length) return t;
  const rest = t.dims.slice(1);
  return joinTensors([t, Tensor.zeros(t.dtype, [length - t.dims[0], ...rest])], [length, ...rest]);
}

// ---------------------------------------------------------------- Scan

interface ScanLayout {
  nState: number;
  nScanIn: number;
  nScanOut: number;
  inAxes: number[];
  inReverse: boolean[];
  outAxes: number[];
  outReverse: boolean[];
}

/** Counts, axes and directions of a Scan, with axes left as given (possibly negative). Scan-8 scans axis 0 of each batch row. */
function scanLayout(ctx: InferContext | KernelContext, body: Graph, numInputs: number): ScanLayout {
  const nScanIn = ctx.node.int('num_scan_inputs');
  if (nScanIn === undefined) return ctx.fail('Scan needs the num_scan_inputs attribute');
  const nState = numInputs - nScanIn;
  const nScanOut = body.outputs.length - nState;
  if (nState < 0 || nScanOut < 0 || body.inputs.length !== numInputs) {
    ctx.fail(`Scan has ${numInputs} inputs but its body takes ${body.inputs.length} and gives ${body.outputs.length}`);
  }
  const list = (name: string, n: number): number[] => {
    const v = ctx.node.ints(name) ?? new Array<number>(n).fill(0);
    if (v.length !== n) ctx.fail(`${name} has ${v.length} entries, expected ${n}`);
    return v;
  };
  // Scan-8 calls the input directions "directions"; it has no per-output ones.
  const inDirs = ctx.opset < 9 ? list('directions', nScanIn) : list('scan_input_directions', nScanIn);
  return {
    nState,
    nScanIn,
    nScanOut,
    inAxes: ctx.opset < 9 ? new Array<number>(nScanIn).fill(0) : list('scan_input_axes', nScanIn),
    inReverse: inDirs.map((d) => d === 1),
    outAxes: ctx.opset < 9 ? new Array<number>(nScanOut).fill(0) : list('scan_output_axes', nScanOut),
    outReverse: (ctx.opset < 9 ? new Array<number>(nScanOut).fill(0) : list('scan_output_directions', nScanOut)).map((d) => d === 1),
  };
}

/** Scan opset 9+: no batch axis; each scan input is iterated along its own axis. */
function inferScan(ctx: InferContext, body: Graph): void {
  const L = scanLayout(ctx, body, ctx.numInputs);
  const carried = Array.from({ length: L.nState }, (_, i) => ctx.inputType(i));
  let length: Dim | undefined;
  const elems: Array<ValueType | undefined> = [];
  for (let j = 0; j < L.nScanIn; j++) {
    const t = ctx.tensor(L.nState + j);
    const shape = t?.shape;
    if (!shape) {
      elems.push(t && tensorType(t.dtype));
      continue;
    }
    const axis = axisOf(ctx, L.inAxes[j], shape.length);
    const d = shape[axis];
    if (typeof length === 'number' && typeof d === 'number' && length !== d) ctx.fail(`scan inputs differ in length (${length} and ${d})`);
    // All scan inputs have the same length; prefer a known number to a symbol.
    if (length === undefined || length === null || typeof d === 'number') length = d;
    elems.push(withoutDim(t, axis));
  }
  const { state, outputs } = inferLoopBody(ctx, body, carried, (st) => [...st, ...elems], 0);
  state.forEach((t, i) => {
    if (t) ctx.setOutput(i, t);
  });
  for (let k = 0; k < L.nScanOut; k++) {
    const t = outputs[L.nState + k];
    if (t?.kind !== 'tensor') continue;
    if (!t.shape) {
      ctx.setOutput(L.nState + k, tensorType(t.dtype));
      continue;
    }
    const axis = normAxis(L.outAxes[k], t.shape.length + 1);
    if (axis === undefined) ctx.fail(`scan_output_axes entry ${L.outAxes[k]} is out of range`);
    const out = withDimAt(t, length ?? null, axis);
    if (out) ctx.setOutput(L.nState + k, out);
  }
}

const scan: OpSchema = {
  op: 'Scan',
  attrs: {
    body: 'graph',
    num_scan_inputs: 'int',
    directions: 'ints',
    scan_input_axes: 'ints',
    scan_input_directions: 'ints',
    scan_output_axes: 'ints',
    scan_output_directions: 'ints',
  },
  infer(ctx) {
    const body = requireGraph(ctx, 'body');
    if (ctx.opset < 9) inferScan8(ctx, body);
    else inferScan(ctx, body);
  },
  kernel(ctx) {
    const body = requireGraph(ctx, 'body');
    return ctx.opset < 9 ? runScan8(ctx, body) : runScan(ctx, body);
  },
};

/** Runs the Scan loop over inputs without a batch axis; returns final states and stacked scan outputs. */
function scanSteps(
  ctx: KernelContext,
  body: Graph,
  L: ScanLayout,
  states: Tensor[],
  scanInputs: Tensor[],
  axes: number[],
  steps: number,
): { states: Tensor[]; outputs: Tensor[][] } {
  const outputs: Tensor[][] = Array.from({ length: L.nScanOut }, () => []);
  let current = states;
  for (let t = 0; t < steps; t++) {
    const elems = scanInputs.map((x, j) => sliceAt(x, axes[j], L.inReverse[j] ? steps - 1 - t : t));
    const outs = ctx.runSubgraph(body, [...current, ...elems]);
    current = outs.slice(0, L.nState);
    outs.slice(L.nState).forEach((o, k) => {
      outputs[k].push(o);
    });
  }
  return { states: current, outputs };
}

function runScan(ctx: KernelContext, body: Graph): Tensor[] {
  const L = scanLayout(ctx, body, ctx.numInputs);
  const states = Array.from({ length: L.nState }, (_, i) => ctx.input(i));
  const scanInputs = Array.from({ length: L.nScanIn }, (_, j) => ctx.input(L.nState + j));
  const axes = scanInputs.map((x, j) => axisOf(ctx, L.inAxes[j], x.rank));
  const steps = scanInputs.length > 0 ? scanInputs[0].dims[axes[0]] : 0;
  scanInputs.forEach((x, j) => {
    if (x.dims[axes[j]] !== steps) ctx.fail(`scan inputs differ in length (${steps} and ${x.dims[axes[j]]})`);
  });
  const run = scanSteps(ctx, body, L, states, scanInputs, axes, steps);
  const outs = run.outputs.map((ts, k) => {
    const stacked = stack(ctx, L.outReverse[k] ? [...ts].reverse() : ts, body.outputs[L.nState + k]);
    return moveLeadingAxis(stacked, axisOf(ctx, L.outAxes[k], stacked.rank));
  });
  return [...run.states, ...outs];
}

// ---------------------------------------------------------------- Scan-8 (batched)

/** Scan-8: input 0 is optional sequence_lens; every other input has a batch axis 0, scan inputs a sequence axis 1. */
function inferScan8(ctx: InferContext, body: Graph): void {
  const L = scanLayout(ctx, body, ctx.numInputs - 1);
  let batch: Dim = null;
  const carried: Array<ValueType | undefined> = [];
  for (let i = 0; i < L.nState; i++) {
    const t = ctx.tensor(1 + i);
    if (t?.shape && batch === null) batch = t.shape[0];
    carried.push(withoutDim(t, 0));
  }
  let length: Dim = null;
  const elems: Array<ValueType | undefined> = [];
  for (let j = 0; j < L.nScanIn; j++) {
    const t = ctx.tensor(1 + L.nState + j);
    const shape = t?.shape;
    if (shape) {
      if (shape.length < 2) ctx.fail('Scan-8 scan inputs need a batch and a sequence axis');
      if (batch === null) batch = shape[0];
      if (length === null) length = shape[1];
    }
    elems.push(shape ? tensorType(t?.dtype, shape.slice(2)) : t && tensorType(t.dtype));
  }
  const { state, outputs } = inferLoopBody(ctx, body, carried, (st) => [...st, ...elems], 0);
  state.forEach((t, i) => {
    const out = withDimAt(t, batch, 0);
    if (out) ctx.setOutput(i, out);
  });
  for (let k = 0; k < L.nScanOut; k++) {
    const elem = withDimAt(outputs[L.nState + k], length, 0);
    const out = withDimAt(elem, batch, 0);
    if (out) ctx.setOutput(L.nState + k, out);
  }
}

function runScan8(ctx: KernelContext, body: Graph): Tensor[] {
  const L = scanLayout(ctx, body, ctx.numInputs - 1);
  const lens = ctx.optional(0);
  const states = Array.from({ length: L.nState }, (_, i) => ctx.input(1 + i));
  const scanInputs = Array.from({ length: L.nScanIn }, (_, j) => ctx.input(1 + L.nState + j));
  const batch = (states[0] ?? scanInputs[0])?.dims[0] ?? 0;
  const maxLen = scanInputs.length > 0 ? scanInputs[0].dims[1] : 0;
  const finals: Tensor[][] = Array.from({ length: L.nState }, () => []);
  const outs: Tensor[][] = Array.from({ length: L.nScanOut }, () => []);
  for (let b = 0; b < batch; b++) {
    const steps = lens ? numbers(lens)[b] : maxLen;
    if (steps > maxLen) ctx.fail(`sequence_lens entry ${steps} exceeds the sequence length ${maxLen}`);
    // Short sequences scan only their first `steps` entries: reverse directions start there.
    const inputs = scanInputs.map((x) => {
      const row = sliceAt(x, 0, b);
      return steps === maxLen
        ? row
        : stack(
            ctx,
            Array.from({ length: steps }, (_, t) => sliceAt(row, 0, t)),
            undefined,
          );
    });
    const run = scanSteps(
      ctx,
      body,
      L,
      states.map((s) => sliceAt(s, 0, b)),
      inputs,
      inputs.map(() => 0),
      steps,
    );
    run.states.forEach((s, i) => {
      finals[i].push(s);
    });
    run.outputs.forEach((ts, k) => {
      outs[k].push(padSteps(stack(ctx, ts, body.outputs[L.nState + k]), maxLen));
    });
  }
  return [...finals.map((ts, i) => stack(ctx, ts, body.outputs[i])), ...outs.map((ts, k) => stack(ctx, ts, body.outputs[L.nState + k]))];
}

// ---------------------------------------------------------------- sequences

function sequenceOf(elem: ValueType | undefined): ValueType {
  return { kind: 'sequence', elem };
}

/** Element type of a sequence input; fails when the input is known not to be a sequence. */
function sequenceElem(ctx: InferContext, i: number): ValueType | undefined {
  const t = ctx.inputType(i);
  if (!t) return undefined;
  if (t.kind !== 'sequence') return ctx.fail(`input ${i} is a ${t.kind}, not a sequence`);
  return t.elem;
}

/** The element type when it is a tensor. */
function elemTensor(t: ValueType | undefined): TensorType | undefined {
  return t?.kind === 'tensor' ? t : undefined;
}

/** Input i's type; a constant whose value carries no declared type counts as the tensor it is. */
function typeOf(ctx: InferContext, i: number): ValueType | undefined {
  const t = ctx.inputType(i);
  if (t || !ctx.hasInput(i)) return t;
  const dtype = ctx.dtype(i);
  const shape = ctx.shape(i);
  return dtype || shape ? tensorType(dtype, shape) : undefined;
}

const sequenceConstruct: OpSchema = {
  op: 'SequenceConstruct',
  infer(ctx) {
    let elem = typeOf(ctx, 0);
    for (let i = 1; i < ctx.numInputs; i++) {
      const a = baseDtype(elem);
      const b = ctx.dtype(i);
      if (a && b && a !== b) ctx.fail(`SequenceConstruct inputs differ in dtype (${a} and ${b})`);
      elem = joinTypes(elem, typeOf(ctx, i)) ?? tensorType(a ?? b);
    }
    ctx.setOutput(0, sequenceOf(elem));
  },
};

const sequenceEmpty: OpSchema = {
  op: 'SequenceEmpty',
  attrs: { dtype: 'int' },
  infer(ctx) {
    const code = ctx.node.int('dtype', 1);
    const dtype = dtypeFromCode(code);
    if (!dtype) ctx.fail(`unknown dtype code ${code}`);
    ctx.setOutput(0, sequenceOf(tensorType(dtype)));
  },
};

const sequenceAt: OpSchema = {
  op: 'SequenceAt',
  infer(ctx) {
    const elem = sequenceElem(ctx, 0);
    if (elem) ctx.setOutput(0, elem);
  },
};

const sequenceInsert: OpSchema = {
  op: 'SequenceInsert',
  infer(ctx) {
    const elem = sequenceElem(ctx, 0);
    const t = typeOf(ctx, 1);
    const a = baseDtype(elem);
    const b = baseDtype(t);
    if (a && b && a !== b) ctx.fail(`cannot insert a ${b} tensor into a sequence of ${a}`);
    ctx.setOutput(0, sequenceOf(elem && t ? joinTypes(elem, t) : tensorType(a ?? b)));
  },
};

const sequenceErase: OpSchema = {
  op: 'SequenceErase',
  infer(ctx) {
    const t = ctx.inputType(0);
    if (t) ctx.setOutput(0, sequenceOf(sequenceElem(ctx, 0)));
  },
};

const sequenceLength: OpSchema = {
  op: 'SequenceLength',
  infer(ctx) {
    sequenceElem(ctx, 0);
    ctx.output(0, 'int64', []);
  },
};

/** Element shape of SplitToSequence: the split axis becomes the chunk size (or goes, with keepdims 0). */
const splitToSequence: OpSchema = {
  op: 'SplitToSequence',
  attrs: { axis: 'int', keepdims: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shape = ctx.shape(0);
    if (!shape) return ctx.setOutput(0, sequenceOf(tensorType(dtype)));
    const axis = axisOf(ctx, ctx.node.int('axis', 0), shape.length);
    const elem = [...shape];
    if (!ctx.hasInput(1)) {
      if (ctx.node.int('keepdims', 1) === 0) elem.splice(axis, 1);
      else elem[axis] = 1;
      return ctx.setOutput(0, sequenceOf(tensorType(dtype, elem)));
    }
    const split = ctx.constant(1);
    const d = shape[axis];
    let size: Dim = null;
    if (split && split.rank === 0) {
      const s = numbers(split)[0];
      if (s <= 0) ctx.fail(`split size ${s} must be positive`);
      // Chunks of `s`; the last is shorter unless the dim divides evenly.
      if (typeof d === 'number' && d % s === 0) size = s;
    } else if (split) {
      const parts = Array.from(numbers(split));
      if (typeof d === 'number' && parts.reduce((a, b) => a + b, 0) !== d) ctx.fail(`split sizes [${parts}] do not sum to dim ${d}`);
      if (parts.length > 0 && parts.every((p) => p === parts[0])) size = parts[0];
    }
    elem[axis] = size;
    ctx.setOutput(0, sequenceOf(tensorType(dtype, elem)));
  },
};

const concatFromSequence: OpSchema = {
  op: 'ConcatFromSequence',
  attrs: { axis: 'int', new_axis: 'int' },
  infer(ctx) {
    const elem = elemTensor(sequenceElem(ctx, 0));
    const axisAttr = ctx.node.int('axis') ?? ctx.fail('ConcatFromSequence needs the axis attribute');
    if (!elem?.shape) return ctx.output(0, elem?.dtype, undefined);
    const newAxis = ctx.node.int('new_axis', 0) === 1;
    const rank = elem.shape.length + (newAxis ? 1 : 0);
    const axis = axisOf(ctx, axisAttr, rank);
    // The number of elements is only known at run time.
    const out: Shape = [...elem.shape];
    if (newAxis) out.splice(axis, 0, ctx.freshDim('seq'));
    else out[axis] = ctx.freshDim('concat');
    ctx.output(0, elem.dtype, out);
  },
};

const sequenceMap: OpSchema = {
  op: 'SequenceMap',
  attrs: { body: 'graph' },
  infer(ctx) {
    const body = requireGraph(ctx, 'body');
    if (body.inputs.length !== ctx.numInputs) ctx.fail(`SequenceMap has ${ctx.numInputs} inputs but its body takes ${body.inputs.length}`);
    // Sequences feed the body one element at a time; tensors are passed whole.
    const inputs = Array.from({ length: ctx.numInputs }, (_, i) => {
      const t = ctx.inputType(i);
      return t?.kind === 'sequence' ? t.elem : t;
    });
    if (ctx.inputType(0) && ctx.inputType(0)?.kind !== 'sequence') ctx.fail('SequenceMap input 0 must be a sequence');
    const outs = ctx.inferSubgraph(body, inputs);
    for (let i = 0; i < ctx.numOutputs; i++) ctx.setOutput(i, sequenceOf(outs[i]));
  },
};

// ---------------------------------------------------------------- optionals

const optional: OpSchema = {
  op: 'Optional',
  attrs: { type: 'type_proto' },
  infer(ctx) {
    if (ctx.hasInput(0)) return ctx.setOutput(0, { kind: 'optional', elem: typeOf(ctx, 0) });
    const a = ctx.node.attr('type');
    if (a?.type !== 'type_proto') return ctx.fail('an Optional without input needs the type attribute');
    ctx.setOutput(0, { kind: 'optional', elem: a.value });
  },
};

const optionalGetElement: OpSchema = {
  op: 'OptionalGetElement',
  infer(ctx) {
    const t = ctx.inputType(0);
    if (!t) return;
    if (t.kind === 'optional') {
      if (t.elem) ctx.setOutput(0, t.elem);
      return;
    }
    // Since opset 18 a plain tensor or sequence passes through unchanged.
    if (ctx.opset < 18) ctx.fail(`input is a ${t.kind}, not an optional`);
    ctx.setOutput(0, t);
  },
};

const optionalHasElement: OpSchema = {
  op: 'OptionalHasElement',
  infer(ctx) {
    const t = ctx.inputType(0);
    if (t && t.kind !== 'optional' && ctx.opset < 18) ctx.fail(`input is a ${t.kind}, not an optional`);
    ctx.output(0, 'bool', []);
  },
};

export const CONTROL_OPS: OpSchema[] = [
  ifOp,
  loop,
  scan,
  sequenceConstruct,
  sequenceEmpty,
  sequenceAt,
  sequenceInsert,
  sequenceErase,
  sequenceLength,
  splitToSequence,
  concatFromSequence,
  sequenceMap,
  optional,
  optionalGetElement,
  optionalHasElement,
];
