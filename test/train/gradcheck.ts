/**
 * Finite-difference checks of gradient rules on onnxruntime. A case builds a tiny graph around
 * the op under test; the harness adds a scalar loss Σ(y·R) with a random R per output, builds
 * the gradients with buildGradients, runs the gradient graph once, and compares every checked
 * element with the central difference (L(x + h) − L(x − h)) / 2h, each loss computed by running
 * the forward graph on onnxruntime. float64 is used where onnxruntime has the op in float64;
 * otherwise the case falls back to float32 with its own step. In float32 the analytic gradient
 * itself carries rounding (normalizations subtract nearly equal terms), hence the looser
 * default tolerance there.
 */
import assert from 'node:assert/strict';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { DType } from '../../src/ir/dtype.js';
import type { Model, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { assertValid } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { inferShapes } from '../../src/ops/infer.js';
import type { Session } from '../../src/runtime/backend.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { buildGradients } from '../../src/train/autodiff.js';
import { Random } from '../../src/util/random.js';

export type FloatType = 'float32' | 'float64';

export interface GradCase {
  /** Declares inputs with `b.input` and returns the output(s) the loss is taken of. */
  build(b: ModelBuilder, dtype: FloatType): Value | Value[];
  /** Try float64 first (default) or go straight to float32 (ops onnxruntime has only in float32). */
  dtype?: FloatType;
  /** Values of each float input by name (default: standard normal). */
  values?: Record<string, (rng: Random, i: number, n: number) => number>;
  /** Inputs to differentiate (default: every float graph input). */
  wrt?: string[];
  opset?: number;
  /** Central-difference step (default 1e-5 in float64, 1e-2 in float32; inputs with kinks keep a step away from them). */
  step?: number;
  /** Largest allowed error (see `relativeError`; default 1e-6 in float64, 5e-3 in float32). */
  tolerance?: number;
  /** Elements checked per input at most (default 24). */
  samples?: number;
  seed?: number;
}

export interface GradCheckResult {
  dtype: FloatType;
  /** Worst relative error over the checked elements of all inputs. */
  worst: number;
  /** Worst relative error per input. */
  perInput: Record<string, number>;
  checked: number;
  gradModel: Model;
}

/**
 * Error of an analytic gradient element a against a numeric one n, relative to the larger of
 * |a|, |n| and a floor of 1e-3 of the largest numeric element of that input (so an element
 * that is ~0 does not turn rounding noise into a large relative error).
 */
function relativeError(a: number, n: number, floor: number): number {
  return Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor, 1e-30);
}

/** The forward model: the case's graph plus R inputs and `loss` = Σ ReduceSum(y_i · R_i). */
export function lossModel(c: GradCase, dtype: FloatType): Model {
  const b = new ModelBuilder({ opset: c.opset ?? 17, name: 'case' });
  const outs = c.build(b, dtype);
  const list = Array.isArray(outs) ? outs : [outs];
  for (const [i, y] of list.entries()) b.output(y, `y${i}`);
  const model = b.build();
  const g = model.graph;
  g.outputs.length = 0;
  let loss: Value | undefined;
  for (const [i, y] of list.entries()) {
    const t = y.type;
    if (t?.kind !== 'tensor') throw new Error(`output ${y.name} has no tensor type`);
    const r = g.addInput(`r${i}`, { kind: 'tensor', dtype: t.dtype, shape: t.shape });
    const prod = g.addNode('Mul', [y, r], 1).output();
    const term = g.addNode('ReduceSum', [prod], 1, { attrs: [['keepdims', { type: 'int', value: 0 }]] }).output();
    loss = loss ? g.addNode('Add', [loss, term], 1).output() : term;
  }
  if (!loss) throw new Error('the case has no outputs');
  g.renameValue(loss, 'loss');
  g.addOutput(loss);
  inferShapes(model, { strict: true });
  return model;
}

function clone(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

function staticDims(v: Value): number[] {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape?.every((d) => typeof d === 'number')) throw new Error(`input ${v.name} needs a static shape`);
  return t.shape as number[];
}

function isFloatType(d: DType | undefined): d is FloatType {
  return d === 'float32' || d === 'float64';
}

function makeTensor(dtype: FloatType, dims: number[], values: number[]): Tensor {
  return Tensor.from(dtype, dims, dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values));
}

async function sessions(fwd: Model, grad: Model): Promise<[Session, Session]> {
  const be = nodeBackend();
  return [await be.createSession(fwd), await be.createSession(grad)];
}

/** Runs the check in float64 (or float32 when onnxruntime lacks a float64 kernel) and returns its figures. */
export async function gradCheck(c: GradCase): Promise<GradCheckResult> {
  if (c.dtype !== 'float32') {
    try {
      return await checkIn(c, 'float64');
    } catch (e) {
      if (!/Could not find an implementation|Type Error: Type 'tensor\(double\)'|No Op registered/.test(String((e as Error).message)))
        throw e;
    }
  }
  return checkIn(c, 'float32');
}

async function checkIn(c: GradCase, dtype: FloatType): Promise<GradCheckResult> {
  const fwd = lossModel(c, dtype);
  const gradModel = clone(fwd);
  const rng = new Random(c.seed ?? 7);
  const g = fwd.graph;
  const floatInputs = g.inputs.filter((v) => isFloatType((v.type as { dtype?: DType }).dtype) && !/^r\d+$/.test(v.name));
  const wrt = c.wrt ?? floatInputs.map((v) => v.name);
  const { gradients } = buildGradients(gradModel, 'loss', wrt);
  assertValid(gradModel, 'gradient model', { registry: defaultRegistry() });

  // Inputs: the case's values for its inputs, standard normal for the R weights.
  const feeds: Record<string, Tensor> = {};
  const host: Record<string, number[]> = {};
  for (const v of g.inputs) {
    const dims = staticDims(v);
    const n = dims.reduce((a, b) => a * b, 1);
    const d = (v.type as { dtype?: DType }).dtype;
    if (!isFloatType(d)) continue;
    const gen = c.values?.[v.name] ?? ((r: Random) => r.normal());
    const values = Array.from({ length: n }, (_, i) => gen(rng, i, n));
    host[v.name] = dtype === 'float32' ? Array.from(Float32Array.from(values)) : values;
    feeds[v.name] = makeTensor(d, dims, host[v.name]);
  }
  for (const v of g.inputs) {
    if (feeds[v.name]) continue;
    throw new Error(`input ${v.name} is not a float tensor; give it as a constant in the case`);
  }

  const [fs, gs] = await sessions(fwd, gradModel);
  try {
    const names = gradients.map((d) => d.name);
    const out = await gs.run(feeds, names);
    const step = c.step ?? (dtype === 'float64' ? 1e-5 : 1e-2);
    const lossAt = async (name: string, i: number, delta: number): Promise<number> => {
      const values = [...host[name]];
      values[i] += delta;
      const f = { ...feeds, [name]: makeTensor(dtype, staticDims(g.inputs.find((v) => v.name === name) as Value), values) };
      const r = await fs.run(f, ['loss']);
      return Number(r.loss.data[0]);
    };
    const perInput: Record<string, number> = {};
    let checked = 0;
    for (const [k, name] of wrt.entries()) {
      const analytic = Array.from(out[names[k]].data as Float32Array | Float64Array, Number);
      assert.equal(analytic.length, host[name].length, `gradient of ${name} has ${analytic.length} elements`);
      const n = analytic.length;
      const count = Math.min(n, c.samples ?? 24);
      const picks = count === n ? Array.from({ length: n }, (_, i) => i) : pickDistinct(rng, n, count);
      const numeric: number[] = [];
      for (const i of picks) numeric.push(((await lossAt(name, i, step)) - (await lossAt(name, i, -step))) / (2 * step));
      const floor = 1e-3 * Math.max(...numeric.map(Math.abs), ...analytic.map(Math.abs));
      let worst = 0;
      picks.forEach((i, j) => {
        worst = Math.max(worst, relativeError(analytic[i], numeric[j], floor));
      });
      perInput[name] = worst;
      checked += picks.length;
    }
    const worst = Math.max(0, ...Object.values(perInput));
    return { dtype, worst, perInput, checked, gradModel };
  } finally {
    await fs.release();
    await gs.release();
  }
}

function pickDistinct(rng: Random, n: number, count: number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(rng.int(0, n));
  return [...chosen].sort((a, b) => a - b);
}

/** Records each case's worst error, for the summary printed at the end of a test file. */
export const RESULTS: Array<{ name: string; dtype: string; worst: number }> = [];

/** Checks a case and asserts its worst error is within tolerance. */
export async function expectGradient(name: string, c: GradCase): Promise<GradCheckResult> {
  const r = await gradCheck(c);
  RESULTS.push({ name, dtype: r.dtype, worst: r.worst });
  const tol = c.tolerance ?? (r.dtype === 'float64' ? 1e-6 : 5e-3);
  assert.ok(
    r.worst <= tol,
    `${name}: worst relative error ${r.worst.toExponential(2)} > ${tol} (${r.dtype}; ${JSON.stringify(r.perInput)})`,
  );
  return r;
}

/** Values at least `gap` away from each of `kinks` (for ops with kinks: Relu at 0, Clip at its bounds). */
export function awayFrom(kinks: number[], gap = 0.1, scale = 2): (rng: Random) => number {
  return (rng) => {
    for (;;) {
      const x = (rng.next() * 2 - 1) * scale;
      if (kinks.every((k) => Math.abs(x - k) >= gap)) return x;
    }
  };
}

/** Distinct values spaced at least `gap` apart in random order (no ties in max-pooling windows). */
export function distinct(gap = 0.05): (rng: Random, i: number, n: number) => number {
  let perm: number[] = [];
  return (rng, i, n) => {
    if (i === 0) {
      perm = Array.from({ length: n }, (_, k) => k);
      for (let k = n - 1; k > 0; k--) {
        const j = rng.int(0, k + 1);
        [perm[k], perm[j]] = [perm[j], perm[k]];
      }
    }
    return (perm[i] - n / 2) * gap;
  };
}

export const positive =
  (lo = 0.5, hi = 2) =>
  (rng: Random): number =>
    lo + rng.next() * (hi - lo);
