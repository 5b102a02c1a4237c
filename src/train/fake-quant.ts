/**
 * Quantization-aware training's two conversions between a QDQ model (as static quantization
 * writes it: integer weights → DequantizeLinear, int32 biases → DequantizeLinear, Q → DQ pairs on
 * activations) and a trainable form of the same graph:
 *
 *   toFakeQuant:   integer weight q → DQ   becomes   float w → QuantizeLinear → DQ  (same scale,
 *                  zero point and axis; w starts at q's real value, so the forward pass is unchanged)
 *                  int32 bias → DQ        becomes   a float bias (its int32 error is far below
 *                  the weights' and activations'; it is re-quantized on the way back)
 *   fromFakeQuant: the inverse, with the trained values: QuantizeLinear over a float weight folds
 *                  into an integer initializer, a float bias becomes int32 with its scale again.
 *
 * Training the trainable form runs the fake-quantized forward pass; QuantizeLinear's gradient rule
 * (src/ops/quant.ts) passes gradients straight through, zeroed where it clips. Scales and zero
 * points stay as calibrated (they are listed in `fixed` for the trainer to freeze). Browser-safe.
 */
import { badInput } from '../errors.js';
import { attr } from '../ir/attributes.js';
import type { DType } from '../ir/dtype.js';
import type { Model, Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { inferShapes } from '../ops/infer.js';
import { roundHalfEven } from '../quantize/params.js';

/** How fromFakeQuant rebuilds an int32 bias: its DequantizeLinear's scale and axis. */
export interface FakeQuantBias {
  name: string;
  scale: Tensor;
  axis?: number;
}

export interface FakeQuantPlan {
  /** Float weights that run through QuantizeLinear → DequantizeLinear while training. */
  weights: string[];
  /** Biases made float, with what re-quantizes them. */
  biases: FakeQuantBias[];
  /** Float initializers that must not be trained (per-channel scales). */
  fixed: string[];
}

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
};

/** Element i's index into a per-axis parameter of `count` entries (0 for a per-tensor one). */
function paramIndexer(dims: readonly number[], axis: number, count: number): (i: number) => number {
  if (count <= 1) return () => 0;
  const a = axis < 0 ? axis + dims.length : axis;
  const inner = dims.slice(a + 1).reduce((p, d) => p * d, 1);
  return (i) => Math.floor(i / inner) % dims[a];
}

function constantOf(v: Value | null | undefined, node: Node, what: string): Tensor | undefined {
  if (!v) return undefined;
  const t = v.initializer;
  if (!t) throw badInput(`${node.describe()}: its ${what} ${v.name} is not a constant; quantization-aware training needs fixed scales`);
  return t;
}

/**
 * Rewrites a QDQ model in place into its trainable form (see the top of the file) and returns
 * what fromFakeQuant needs to undo it. Refuses a model with no quantized weight.
 */
export function toFakeQuant(model: Model): FakeQuantPlan {
  const g = model.graph;
  const plan: FakeQuantPlan = { weights: [], biases: [], fixed: [] };
  const floats = new Map<Value, Value>();
  const names = new Set(g.nodes.map((n) => n.name).filter((n) => n));
  const nodeName = (base: string): string => {
    let name = base;
    for (let k = 1; names.has(name); k++) name = `${base}_${k}`;
    names.add(name);
    return name;
  };
  for (const dq of [...g.nodes]) {
    if (dq.opType !== 'DequantizeLinear' || (dq.domain !== '' && dq.domain !== 'ai.onnx')) continue;
    const q = dq.input(0);
    const qt = q?.initializer;
    if (!q || !qt || !INT_RANGE[qt.dtype]) continue;
    const scale = constantOf(dq.input(1), dq, 'scale') as Tensor;
    const zp = constantOf(dq.input(2), dq, 'zero point');
    const axis = dq.int('axis', 1);
    const s = scale.toFloat32();
    const z = zp ? Array.from(zp.data as ArrayLike<number>, Number) : [0];
    const at = paramIndexer(qt.dims, axis, s.length);
    const base = q.name.replace(/_quantized$/, '');
    let w = floats.get(q);
    if (!w) {
      const ints = qt.data as ArrayLike<number>;
      const real = new Float32Array(qt.size);
      for (let i = 0; i < real.length; i++) real[i] = (Number(ints[i]) - (z[at(i)] ?? 0)) * s[at(i)];
      w = g.addInitializer(base, Tensor.from('float32', [...qt.dims], real));
      floats.set(q, w);
    }
    if (qt.dtype === 'int32') {
      // A bias: plain float while training.
      g.replaceAllUses(dq.output(), w);
      g.removeNode(dq);
      plan.biases.push({ name: w.name, scale, ...(dq.attrs.has('axis') ? { axis } : {}) });
      continue;
    }
    // QuantizeLinear's output type is its zero point's (uint8 without one): give int8 its zeros.
    const zpv = dq.input(2) ?? g.addInitializer(`${base}_zero_point`, Tensor.zeros(qt.dtype, [...scale.dims]));
    const quant = g.addNode('QuantizeLinear', [w, dq.input(1), zpv], [g.freshName(`${base}_fake_quantized`)], {
      name: nodeName(`${base}_QuantizeLinear`),
      before: dq,
      ...(dq.attrs.has('axis') ? { attrs: [['axis', attr.int(axis)]] } : {}),
    });
    quant.output().type = { kind: 'tensor', dtype: qt.dtype, shape: [...qt.dims] };
    dq.setInput(0, quant.output());
    if (!plan.weights.includes(w.name)) plan.weights.push(w.name);
    const sv = dq.input(1) as Value;
    if (s.length > 1 && !plan.fixed.includes(sv.name)) plan.fixed.push(sv.name);
  }
  if (plan.weights.length === 0) {
    throw badInput('the model has no quantized weight (integer initializer → DequantizeLinear); quantize it first, or give a float model');
  }
  g.removeUnusedInitializers();
  g.topoSort();
  inferShapes(model);
  return plan;
}

/**
 * Turns a trained model in the trainable form back into a QDQ model, in place: QuantizeLinear
 * nodes over float initializers fold into integer initializers (symmetric int8 weights kept within
 * ±127), and the plan's biases become int32 → DequantizeLinear again.
 */
export function fromFakeQuant(model: Model, plan: FakeQuantPlan): void {
  const g = model.graph;
  for (const node of [...g.nodes]) {
    if (node.opType !== 'QuantizeLinear' || (node.domain !== '' && node.domain !== 'ai.onnx')) continue;
    const w = node.input(0);
    const wt = w?.initializer;
    if (!w || !wt || wt.dtype !== 'float32') continue;
    const scale = constantOf(node.input(1), node, 'scale') as Tensor;
    const zp = constantOf(node.input(2), node, 'zero point');
    const dtype: DType = zp?.dtype ?? 'uint8';
    const range = INT_RANGE[dtype];
    if (!range) throw badInput(`${node.describe()} quantizes to ${dtype}; quantization-aware training folds 8- and 16-bit integers only`);
    const z = zp ? Array.from(zp.data as ArrayLike<number>, Number) : [0];
    // Symmetric int8 (zero point 0) keeps −128 out, as static quantization and TFLite do.
    const lo = dtype === 'int8' && z.every((x) => x === 0) ? -127 : range[0];
    const s = scale.toFloat32();
    const at = paramIndexer(wt.dims, node.int('axis', 1), s.length);
    const x = wt.data as Float32Array;
    const q = new Array<number>(x.length);
    for (let i = 0; i < x.length; i++) {
      const c = at(i);
      q[i] = Math.min(range[1], Math.max(lo, roundHalfEven(x[i] / s[c]) + (z[c] ?? 0)));
    }
    const out = node.output();
    const folded = g.addInitializer(g.freshName(`${w.name}_quantized`), Tensor.from(dtype, [...wt.dims], q));
    g.replaceAllUses(out, folded);
    g.removeNode(node);
  }
  for (const b of plan.biases) {
    const v = g.initializers.find((x) => x.name === b.name);
    const bt = v?.initializer;
    if (!v || !bt) throw new Error(`fromFakeQuant: the trained model has no bias ${b.name}`);
    const s = b.scale.toFloat32();
    const x = bt.toFloat32();
    const limit = 2 ** 31 - 1;
    const q = Array.from(x, (a, i) => Math.min(limit, Math.max(-limit, roundHalfEven(a / s[s.length > 1 ? i : 0]))));
    const qv = g.addInitializer(g.freshName(`${b.name}_quantized`), Tensor.from('int32', [...bt.dims], q));
    const sv = g.addInitializer(g.freshName(`${b.name}_scale`), b.scale);
    const users = [...v.uses];
    const dq = g.addNode('DequantizeLinear', [qv, sv], [g.freshName(`${b.name}_dequantized`)], {
      name: `${b.name}_DequantizeLinear`,
      ...(b.axis === undefined ? {} : { attrs: [['axis', attr.int(b.axis)]] }),
    });
    dq.output().type = { kind: 'tensor', dtype: 'float32', shape: [...bt.dims] };
    for (const u of users) u.node.setInput(u.index, dq.output());
  }
  g.removeUnusedInitializers();
  g.topoSort();
  inferShapes(model);
}
