/**
 * Static 8-bit post-training quantization in QDQ form: optimize (so BatchNorm is folded and every
 * weight is a plain initializer, which is what runtimes fuse), plan, calibrate the planned
 * tensors, rewrite. The model is changed in place.
 */
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import type { Model } from '../ir/graph.js';
import { upgradeOpset } from '../ir/upgrade/index.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import { optimize } from '../passes/pipeline.js';
import { calibrate } from './calibrate.js';
import type { QuantDType } from './params.js';
import { observedValues, planQuantization } from './plan.js';
import { applyPlan } from './qdq.js';
import type { QuantizeOptions, QuantizeReport, ScaleSummary } from './schemes.js';

/** Per-axis QuantizeLinear/DequantizeLinear arrived in opset 13. */
const MIN_OPSET = 13;
/**
 * Opset the model is raised to when it can be: HardSwish (14) and LayerNormalization (17) then
 * fuse into one op each, which stays float between one DQ and one Q, instead of a chain of
 * Add/Clip/Mul/Div each quantized again (PP-OCRv4 recognition: 144 Q/DQ pairs instead of 200).
 */
const FUSED_OPSET = 17;

function summary(xs: number[]): ScaleSummary {
  if (xs.length === 0) return { count: 0, min: 0, median: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  return { count: s.length, min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
}

function countNodes(model: Model): number {
  return [...model.graph.allNodes()].length;
}

/**
 * What quantization does to a float model before planning: opset 13 at least (per-axis
 * Q/DQ), and the optimizer (folded BatchNorm, Identity-free constants: what runtimes fuse).
 * Per-layer comparison applies the same to the float model, so tensor names line up.
 */
export function prepareForQuantization(model: Model, runOptimizer = true): void {
  const opset = model.opset('') ?? MIN_OPSET;
  if (opset < FUSED_OPSET) {
    try {
      upgradeOpset(model, FUSED_OPSET);
    } catch {
      if (opset < MIN_OPSET) upgradeOpset(model, MIN_OPSET);
    }
  }
  if (runOptimizer) optimize(model, { level: 'basic' });
  inferShapes(model, { registry: defaultRegistry() });
  model.graph.topoSort();
}

export async function staticQuantize(model: Model, options: QuantizeOptions, activation: QuantDType): Promise<QuantizeReport> {
  const t0 = performance.now();
  const scheme = options.scheme ?? activation;
  const registry = defaultRegistry();
  const before = modelStats(model);
  const nodesBefore = countNodes(model);
  prepareForQuantization(model, options.optimize !== false);
  const g = model.graph;
  const tOpt = performance.now();
  const plan = planQuantization(g.nodes, {
    activation,
    symmetricActivations: options.symmetricActivations ?? false,
    perChannel: options.perChannel ?? true,
    exclude: options.exclude ?? [],
  });
  if (plan.nodes.length === 0) {
    const why = plan.float.length > 0 ? ` (${plan.float.map((f) => `${f.node.describe()}: ${f.reason}`).join('; ')})` : '';
    throw badInput(`nothing to quantize: the model has no Conv, ConvTranspose, Gemm or MatMul that can run in int8${why}`);
  }
  if (!options.calib) throw badInput(`scheme ${scheme} calibrates activations: give calibration data (--calib)`);
  const method = options.method ?? 'minmax';
  const cal = await calibrate(model, observedValues(plan), options.calib, {
    method,
    observer: { dtype: activation, symmetric: options.symmetricActivations ?? false, percentile: options.percentile },
    backend: options.backend,
    calibSize: options.calibSize,
    batchSize: options.batchSize,
    threads: options.threads,
    onProgress: options.onProgress,
  });
  const tCal = performance.now();
  const quantized: Record<string, number> = {};
  for (const qn of plan.nodes) quantized[qn.node.opType] = (quantized[qn.node.opType] ?? 0) + 1;
  const float = plan.float.map((f) => ({ node: f.node.name || f.node.output().name, op: f.node.opType, reason: f.reason }));
  const stats = applyPlan(model, plan, cal.ranges);
  inferShapes(model, { registry });
  assertValid(model, 'quantized model', { registry });
  const tEnd = performance.now();
  return {
    scheme,
    activations: activation,
    weights: 'int8',
    perChannel: options.perChannel ?? true,
    symmetricActivations: options.symmetricActivations ?? false,
    calibration: {
      data: options.calib.name,
      method,
      samples: cal.samples,
      batches: cal.batches,
      ms: cal.ms,
      inferenceMs: cal.inferenceMs,
    },
    quantized,
    float,
    tensors: {
      activations: stats.activations,
      absorbed: stats.absorbed,
      weights: stats.weights,
      biases: stats.biases,
      biasClamped: stats.biasClamped,
    },
    scales: { activations: summary(stats.activationScales), weights: summary(stats.weightScales) },
    weightBytes: { before: before.weightBytes, after: modelStats(model).weightBytes },
    nodes: { before: nodesBefore, after: countNodes(model) },
    ms: { optimize: tOpt - t0, calibrate: tCal - tOpt, rewrite: tEnd - tCal, total: tEnd - t0 },
  };
}
