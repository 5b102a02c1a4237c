/**
 * Mixed precision under a size budget: each layer (Conv, ConvTranspose, Gemm, MatMul with a
 * constant weight) is stored as one of
 * - int8: the static scheme's W8A8 QDQ group (weights per channel, activations calibrated);
 * - int4: 4-bit weights, activations float — weight-only.ts's representation (a blocked uint4
 *   DequantizeLinear at opset 21 for convolutions, com.microsoft.MatMulNBits for MatMul/Gemm);
 * - fp16: the weight stored as float16 behind a Cast to float32, activations float;
 * so that the weight bytes stay within `budget × the float32 model's` and the summed per-layer
 * sensitivity is smallest.
 *
 * Sensitivity here is the output's noise-to-signal ratio with the layer alone in that form (the
 * rest float): NSRs of independent noise sources add up, roughly, which is what a sum-minimising
 * choice needs, and it is measured on labelled data too (a single layer seldom moves top-1 by a
 * countable sample). int8 comes from the sensitivity ranking, int4 is measured the same way, and
 * fp16 is taken as 0: a float16 weight's relative rounding is 2⁻¹¹ (about 66 dB per layer), below
 * what these measurements resolve.
 *
 * The choice is a multiple-choice knapsack, solved exactly by dynamic programming over the byte
 * budget cut into DP_UNITS steps (each option's bytes rounded up, so the answer never exceeds
 * the budget). Bytes not attributable to a layer (biases, normalisation parameters, constants of
 * elementwise ops) are measured on the int8 model and held fixed; the result is measured again
 * and, if the estimate was short, solved once more with the overshoot taken off the budget.
 */
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model, Value } from '../ir/graph.js';
import type { Backend } from '../runtime/backend.js';
import { toFloat16 } from './fp16.js';
import type { Scorer } from './scoring.js';
import type { LayerSensitivity } from './sensitivity.js';
import type { LayerInfo, Variants } from './variants.js';
import { DEFAULT_BLOCK_SIZE, weightOnlyQuantize } from './weight-only.js';

export const PRECISIONS = ['int8', 'int4', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Steps the byte budget is cut into for the dynamic programme. */
const DP_UNITS = 4000;

export interface MixedLayer {
  layer: string;
  op: string;
  depthwise: boolean;
  precision: Precision;
  /** Estimated bytes of its weight in that form. */
  bytes: number;
  /** Output NSR with the layer alone in that form (0 for fp16). */
  nsr: number;
}

export interface MixedReport {
  /** The budget as a fraction of the float32 model's weight bytes. */
  budget: number;
  budgetBytes: number;
  /** Weight bytes of the float32 model (prepared: BatchNorm folded). */
  floatBytes: number;
  /** Weight bytes of the result, measured. */
  bytes: number;
  met: boolean;
  counts: Record<Precision, number>;
  /** Sum of the chosen layers' NSR, and the SQNR it predicts. */
  predicted: { nsr: number; sqnrDb: number };
  layers: MixedLayer[];
  notes: string[];
  ms: number;
}

/** Bytes of a layer's weight (and its scales) stored in a precision. */
export function layerBytes(l: LayerInfo, p: Precision, blockSize = DEFAULT_BLOCK_SIZE): number {
  const w = l.weightElements;
  const c = Math.max(1, l.channels);
  switch (p) {
    case 'int8':
      return w + 4 * c;
    case 'int4': {
      // uint4 codes, a float32 scale and a uint4 zero point per block of blockSize inputs.
      const blocks = c * Math.ceil(w / c / blockSize);
      return Math.ceil(w / 2) + 4 * blocks + Math.ceil(blocks / 2);
    }
    case 'fp16':
      return 2 * w;
  }
}

export interface MixedOption {
  precision: Precision;
  bytes: number;
  cost: number;
}

/**
 * Picks one option per layer with Σ bytes ≤ budget and the smallest Σ cost (exact up to the
 * rounding of bytes to budget / DP_UNITS, rounded up). Undefined when even the smallest
 * options do not fit.
 */
export function chooseOptions(options: ReadonlyArray<readonly MixedOption[]>, budget: number): number[] | undefined {
  const n = options.length;
  if (n === 0) return [];
  if (!(budget >= 0)) return undefined;
  // Whole bytes when the budget is small enough; else DP_UNITS steps (each option rounded up).
  const unit = budget <= DP_UNITS ? 1 : budget / DP_UNITS;
  const units = Math.floor(budget / unit + 1e-9);
  const size = (b: number): number => Math.ceil(b / unit - 1e-9);
  const INF = Number.POSITIVE_INFINITY;
  // best[u]: least cost with at most u units used, over the layers so far.
  let best = new Float64Array(units + 1).fill(0);
  const pick: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const next = new Float64Array(units + 1).fill(INF);
    const choice = new Uint8Array(units + 1).fill(255);
    options[i].forEach((o, k) => {
      const s = size(o.bytes);
      if (s > units) return;
      for (let u = s; u <= units; u++) {
        const v = best[u - s] + o.cost;
        if (v < next[u]) {
          next[u] = v;
          choice[u] = k;
        }
      }
    });
    pick.push(choice);
    best = next;
  }
  if (!Number.isFinite(best[units])) return undefined;
  const out = new Array<number>(n);
  let u = units;
  for (let i = n - 1; i >= 0; i--) {
    const k = pick[i][u];
    out[i] = k;
    u -= size(options[i][k].bytes);
  }
  return out;
}

/** Stores the named layers' weights as float16 behind a Cast (in place). */
export function castWeightsToFp16(model: Model, layers: ReadonlySet<string>): number {
  const g = model.graph;
  let done = 0;
  const cache = new Map<Value, Value>();
  for (const node of [...g.nodes]) {
    if (!layers.has(node.name)) continue;
    const w = node.input(1);
    const t = w?.initializer;
    if (!w || !t || t.dtype !== 'float32' || w.isGraphInput) continue;
    let cast = cache.get(w);
    if (!cast) {
      const half = g.addInitializer(`${w.name}_fp16`, toFloat16(t).tensor);
      const c = g.addNode('Cast', [half], [`${w.name}_fp32`], {
        name: g.freshName(`${w.name}_Cast`),
        attrs: [['to', { type: 'int', value: 1 }]],
        before: node,
      });
      cast = c.output();
      cast.type = { kind: 'tensor', dtype: 'float32', shape: [...t.dims] };
      cache.set(w, cast);
    }
    node.setInput(1, cast);
    done++;
  }
  g.removeUnusedInitializers();
  g.topoSort();
  return done;
}

/** int4 weights (weight-only.ts's layout) for the named layers of a model, in place; other layers untouched. */
export async function int4Layers(model: Model, layers: ReadonlySet<string>, blockSize: number, backend: Backend): Promise<string[]> {
  if (layers.size === 0) return [];
  const others = model.graph.nodes.map((n) => n.name).filter((n) => n && !layers.has(n));
  const r = await weightOnlyQuantize(model, { backend, exclude: others, blockSize, optimize: false, scheme: 'weight-int4' }, 4);
  return r.float.filter((f) => layers.has(f.node) && f.reason !== 'excluded').map((f) => `${f.node}: ${f.reason}`);
}

function copyModel(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

/** Output NSR with each layer alone stored as int4 (weights only), the rest float. */
export async function int4Sensitivity(
  variants: Variants,
  scorer: Scorer,
  blockSize: number,
  backend: Backend,
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const layers = variants.layers.filter((l) => l.weightElements > 0);
  for (let i = 0; i < layers.length; i++) {
    const m = copyModel(variants.float);
    const problems = await int4Layers(m, new Set([layers[i].name]), blockSize, backend);
    out.set(layers[i].name, problems.length > 0 ? Number.POSITIVE_INFINITY : (await scorer.score(m)).nsr);
    onProgress?.(i + 1, layers.length);
  }
  return out;
}

export interface MixedPlan {
  layers: MixedLayer[];
  /** Estimated bytes of the layers, and the budget they were fitted in. */
  bytes: number;
  fitted: number;
  met: boolean;
}

/** The least-sensitive assignment whose layer bytes fit `layerBudget`. */
export function planMixed(
  layers: readonly LayerInfo[],
  int8: ReadonlyMap<string, number>,
  int4: ReadonlyMap<string, number>,
  layerBudget: number,
  blockSize = DEFAULT_BLOCK_SIZE,
): MixedPlan {
  const eligible = layers.filter((l) => l.weightElements > 0);
  const opts = eligible.map((l) =>
    PRECISIONS.map((p) => ({
      precision: p,
      bytes: layerBytes(l, p, blockSize),
      cost: p === 'fp16' ? 0 : ((p === 'int8' ? int8.get(l.name) : int4.get(l.name)) ?? Number.POSITIVE_INFINITY),
    })).filter((o) => Number.isFinite(o.cost)),
  );
  let picks = chooseOptions(opts, layerBudget);
  const met = picks !== undefined;
  // Over budget whatever we do: the smallest option of each layer.
  if (!picks) picks = opts.map((o) => o.reduce((best, x, k) => (x.bytes < o[best].bytes ? k : best), 0));
  const out = eligible.map((l, i) => {
    const o = opts[i][picks[i]];
    return { layer: l.name, op: l.op, depthwise: l.depthwise, precision: o.precision, bytes: o.bytes, nsr: o.cost };
  });
  return { layers: out, bytes: out.reduce((a, l) => a + l.bytes, 0), fitted: layerBudget, met };
}

/**
 * Measures what mixed precision needs (int4 sensitivities), plans under the budget, and returns
 * the plan with the bytes the rest of the model takes. `build` makes the model for a plan (the
 * caller's static quantization with the non-int8 layers excluded, then int4/fp16 rewrites) so
 * it can be measured.
 */
export async function mixedPrecision(
  variants: Variants,
  scorer: Scorer,
  sensitivity: readonly LayerSensitivity[],
  budget: number,
  options: {
    blockSize?: number;
    backend: Backend;
    build: (plan: MixedPlan) => Promise<Model>;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<{ report: MixedReport; model: Model }> {
  const t0 = performance.now();
  if (!(budget > 0)) throw badInput(`--size-budget ${budget}: expected a fraction of the float32 weight bytes above 0 (0.3 for 30%)`);
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const floatBytes = modelStats(variants.float).weightBytes;
  const budgetBytes = budget * floatBytes;
  const eligible = variants.layers.filter((l) => l.weightElements > 0);
  // Bytes outside the layers' weights: measured on the all-int8 model.
  const int8Model = (await variants.build()).model;
  const fixed = Math.max(0, modelStats(int8Model).weightBytes - eligible.reduce((a, l) => a + layerBytes(l, 'int8', blockSize), 0));
  // The least any assignment can take, every layer in its smallest form: refused before measuring anything.
  const least = fixed + eligible.reduce((a, l) => a + Math.min(...PRECISIONS.map((p) => layerBytes(l, p, blockSize))), 0);
  if (budgetBytes < least) {
    const floor = Math.ceil((least / floatBytes) * 1000) / 1000;
    throw badInput(
      `--size-budget ${budget}: with every layer's weights in int4 the model still keeps ${floor.toFixed(3)} of its float32 weight bytes (${least} of ${floatBytes}): give --size-budget ${floor.toFixed(3)} or more`,
    );
  }
  const int8 = new Map(sensitivity.map((s) => [s.layer, s.nsr]));
  const int4 = await int4Sensitivity(variants, scorer, blockSize, options.backend, options.onProgress);
  const notes: string[] = [];
  let plan = planMixed(variants.layers, int8, int4, budgetBytes - fixed, blockSize);
  let model = await options.build(plan);
  let bytes = modelStats(model).weightBytes;
  if (bytes > budgetBytes && plan.met) {
    // The estimate was short (scales, padding): take the overshoot off and solve again.
    const again = planMixed(variants.layers, int8, int4, budgetBytes - fixed - (bytes - budgetBytes) * 1.05, blockSize);
    if (again.met) {
      plan = again;
      model = await options.build(plan);
      bytes = modelStats(model).weightBytes;
      notes.push('solved twice: the first estimate of the bytes was short');
    }
  }
  const counts: Record<Precision, number> = { int8: 0, int4: 0, fp16: 0 };
  for (const l of plan.layers) counts[l.precision]++;
  const nsr = plan.layers.reduce((a, l) => a + l.nsr, 0);
  if (!plan.met) notes.push('the budget is below every layer in int4: each layer takes its smallest form');
  return {
    report: {
      budget,
      budgetBytes,
      floatBytes,
      bytes,
      met: bytes <= budgetBytes,
      counts,
      predicted: { nsr, sqnrDb: nsr > 0 ? -10 * Math.log10(nsr) : Number.POSITIVE_INFINITY },
      layers: plan.layers,
      notes,
      ms: performance.now() - t0,
    },
    model,
  };
}
