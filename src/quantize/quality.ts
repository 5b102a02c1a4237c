/**
 * The quality tools around static quantization, in the order they act:
 *   1. prepare the float model (optimizer: BatchNorm folded) and name every layer;
 *   2. cross-layer equalization (equalize.ts) — float outputs unchanged;
 *   3. per-layer sensitivity (sensitivity.ts), when asked for or needed by 4 or 5;
 *   4. fallback to float of the most sensitive layers until a limit is met (fallback.ts), or
 *   5. mixed precision int8 / int4 / fp16 under a size budget (mixed.ts);
 *   6. static quantization with what stays float excluded (static.ts), then the int4/fp16 rewrites;
 *   7. bias correction (bias-correction.ts) — kept only when it does not lower the score.
 * Scores (accuracy drop, output SQNR) are measured on `eval` data when given, else on the
 * calibration data (which then also chose the ranges, so the figure is optimistic).
 */
import type { Dataset } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model } from '../ir/graph.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import { type BiasCorrectionMode, type BiasCorrectionReport, correctBiases } from './bias-correction.js';
import { DEFAULT_CALIB_SIZE } from './calibrate.js';
import { channelRanges, type EqualizeReport, equalizationTensors, equalizeCrossLayer } from './equalize.js';
import { type FallbackReport, fallbackToFloat } from './fallback.js';
import { castWeightsToFp16, int4Layers, type MixedLayer, type MixedReport, mixedPrecision } from './mixed.js';
import type { QuantDType } from './params.js';
import type { QuantizeOptions, QuantizeReport, Scheme } from './schemes.js';
import { dropPoints, type Score, Scorer } from './scoring.js';
import { layerSensitivity, type SensitivityReport } from './sensitivity.js';
import { prepareForQuantization, staticQuantize } from './static.js';
import { nameLayers, Variants } from './variants.js';
import { DEFAULT_BLOCK_SIZE } from './weight-only.js';

export type EqualizeMode = 'weights' | 'activations';

export interface QualityOptions {
  /** Cross-layer equalization before calibration: true = 'weights' (the DFQ rule). */
  equalize?: boolean | EqualizeMode;
  /** Bias correction after quantization: true = 'empirical'. */
  biasCorrection?: boolean | BiasCorrectionMode;
  /** Samples bias correction averages over (default 16). */
  biasCorrectionSamples?: number;
  /** Data the scores are measured on (labelled for maxDrop). */
  eval?: Dataset;
  /** Samples of `eval` to use (default all). */
  evalSize?: number;
  /** Keep float the most sensitive layers until top-1 drops by at most this many points. */
  maxDrop?: number;
  /** Keep float the most sensitive layers until the output SQNR is at least this (dB). */
  minSqnr?: number;
  /** Rank the layers by sensitivity (also done when maxDrop, minSqnr or sizeBudget needs it). */
  sensitivity?: boolean;
  /** Mixed precision: weight bytes at most this fraction of the float32 model's. */
  sizeBudget?: number;
  /** A sensitivity ranking from an earlier run on the same model, data and options: not measured again. */
  ranking?: SensitivityReport;
  /** Progress of the long stages. */
  onStage?: (stage: string, done: number, total: number) => void;
}

export interface QualityReport {
  equalize?: EqualizeReport;
  sensitivity?: SensitivityReport;
  fallback?: Omit<FallbackReport, 'model'>;
  mixed?: MixedReport;
  biasCorrection?: BiasCorrectionReport & { kept: boolean; before?: Score; after?: Score };
  /** The result against the float model on the scoring data. */
  score?: { data: string; samples: number; float: Score; final: Score; drop?: number };
  ms: { total: number };
}

export type QualityQuantizeReport = QuantizeReport & { quality: QualityReport };

const QUALITY_KEYS = ['equalize', 'biasCorrection', 'maxDrop', 'minSqnr', 'sensitivity', 'sizeBudget'] as const;

/** Whether any quality tool is asked for. */
export function wantsQuality(o: QualityOptions): boolean {
  return QUALITY_KEYS.some((k) => o[k] !== undefined && o[k] !== false);
}

/**
 * Checks that the options make sense together; throws bad input naming the flag. `evalComing`:
 * the evaluation data is named but not opened yet (its labels are checked once it is).
 */
export function checkQualityOptions(o: QualityOptions, evalComing = false): void {
  if (o.maxDrop !== undefined) {
    if (!(o.maxDrop >= 0) || !Number.isFinite(o.maxDrop)) throw badInput(`--max-drop ${o.maxDrop}: expected top-1 points ≥ 0`);
    if (!o.eval && !evalComing) throw badInput('--max-drop measures top-1 accuracy: give labelled data with --eval (or use --min-sqnr)');
    if (o.eval && !o.eval.hasLabels)
      throw badInput(`--max-drop measures top-1 accuracy, but --eval ${o.eval.name} has no labels: use --min-sqnr`);
  }
  if (o.minSqnr !== undefined && !Number.isFinite(o.minSqnr)) throw badInput(`--min-sqnr ${o.minSqnr}: expected a number of dB`);
  if (o.sizeBudget !== undefined) {
    if (!(o.sizeBudget > 0 && o.sizeBudget <= 1)) {
      throw badInput(`--size-budget ${o.sizeBudget}: expected a fraction of the float32 weight bytes in (0, 1] (0.3 for 30%)`);
    }
    if (o.maxDrop !== undefined || o.minSqnr !== undefined) {
      throw badInput(
        '--size-budget chooses precisions under a size; --max-drop/--min-sqnr fall back to float under a quality limit: give one',
      );
    }
  }
  if (o.evalSize !== undefined && !(Number.isInteger(o.evalSize) && o.evalSize >= 1)) {
    throw badInput(`--eval-size ${o.evalSize}: expected a whole number ≥ 1`);
  }
}

function copy(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

/** Takes another model's graph and imports over (in place), as a rewrite that went through a copy. */
function adopt(model: Model, from: Model): void {
  model.graph = from.graph;
  model.opsetImports = from.opsetImports;
  model.irVersion = from.irVersion;
  model.functions = from.functions;
}

/**
 * Quantizes `model` in place with the static scheme of `activation` and the quality tools asked
 * for. `scheme` names it in the report.
 */
export async function qualityQuantize(
  model: Model,
  options: QuantizeOptions & QualityOptions,
  activation: QuantDType,
): Promise<QualityQuantizeReport> {
  checkQualityOptions(options);
  const t0 = performance.now();
  if (!options.calib) throw badInput(`scheme ${options.scheme ?? activation} calibrates activations: give calibration data (--calib)`);
  const calib = options.calib;
  const stage = options.onStage;
  const weightBytesBefore = modelStats(model).weightBytes;
  const nodesBefore = [...model.graph.allNodes()].length;
  const quality: QualityReport = { ms: { total: 0 } };
  prepareForQuantization(model, options.optimize !== false);
  nameLayers(model);
  const reference = copy(model);

  // 2. Cross-layer equalization.
  if (options.equalize) {
    const mode = options.equalize === true ? 'weights' : options.equalize;
    const acts =
      mode === 'activations'
        ? await channelRanges(model, equalizationTensors(model), calib, options.backend, {
            limit: options.calibSize,
            batchSize: options.batchSize,
            threads: options.threads,
          })
        : undefined;
    quality.equalize = equalizeCrossLayer(model, { activationRanges: acts });
  }
  const floatModel = copy(model);

  // 3–5. Sensitivity, fallback, mixed precision.
  const needScores =
    options.sensitivity || options.maxDrop !== undefined || options.minSqnr !== undefined || options.sizeBudget !== undefined;
  const scoreData = options.eval ?? calib;
  let scorer: Scorer | undefined;
  const getScorer = async (): Promise<Scorer> => {
    scorer ??= await Scorer.create(reference, scoreData, options.backend, {
      // Without --eval, the calibration samples' count of the calibration data.
      limit: options.evalSize ?? (options.eval ? undefined : (options.calibSize ?? DEFAULT_CALIB_SIZE)),
      batchSize: options.batchSize,
      threads: options.threads,
    });
    return scorer;
  };
  let floatLayers: string[] = [];
  let mixedLayers: MixedLayer[] | undefined;
  let variants: Variants | undefined;
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (needScores) {
    variants = await Variants.create(floatModel, {
      activation,
      symmetricActivations: options.symmetricActivations,
      perChannel: options.perChannel,
      exclude: options.exclude,
      method: options.method,
      percentile: options.percentile,
      calib,
      calibSize: options.calibSize,
      batchSize: options.batchSize,
      threads: options.threads,
      backend: options.backend,
    });
    const s = await getScorer();
    const v = variants;
    quality.sensitivity = options.ranking ?? (await layerSensitivity(v, s, { onProgress: (d, t) => stage?.('sensitivity', d, t) }));
    if (options.maxDrop !== undefined || options.minSqnr !== undefined) {
      const { model: _, ...fb } = await fallbackToFloat(
        v,
        s,
        quality.sensitivity.layers,
        {
          ...(options.maxDrop !== undefined ? { maxDrop: options.maxDrop } : {}),
          ...(options.minSqnr !== undefined ? { minSqnr: options.minSqnr } : {}),
        },
        { onStep: (step) => stage?.('fallback', step.float, v.layers.length) },
      );
      quality.fallback = fb;
      floatLayers = fb.float;
    } else if (options.sizeBudget !== undefined) {
      const budget = options.sizeBudget;
      const { report } = await mixedPrecision(v, s, quality.sensitivity.layers, budget, {
        blockSize,
        backend: options.backend,
        onProgress: (d, t) => stage?.('int4 sensitivity', d, t),
        build: async (plan) => {
          const { model: m } = await v.build({ float: notInt8(plan.layers) });
          await rewriteMixed(m, plan.layers, blockSize, options);
          return m;
        },
      });
      quality.mixed = report;
      mixedLayers = report.layers;
      floatLayers = notInt8(report.layers);
    }
  }

  // 6. The model itself: static quantization with the float layers excluded.
  const exclude = [...(options.exclude ?? []), ...(variants ? variants.nodesOf(floatLayers) : floatLayers)];
  const floatSet = new Set(floatLayers);
  const report = variants?.layers.every((l) => floatSet.has(l.name))
    ? everyLayerFloat(model, options.scheme ?? activation, variants.layers)
    : await staticQuantize(model, { ...options, exclude, optimize: false }, activation);
  if (mixedLayers) {
    await rewriteMixed(model, mixedLayers, blockSize, options);
    inferShapes(model, { registry: defaultRegistry() });
    assertValid(model, 'mixed-precision model', { registry: defaultRegistry() });
    if (quality.mixed) quality.mixed.bytes = modelStats(model).weightBytes;
  }

  // 7. Bias correction, kept if the score does not drop.
  if (options.biasCorrection) {
    const mode = options.biasCorrection === true ? 'empirical' : options.biasCorrection;
    const s = await getScorer();
    const before = await s.score(model);
    const corrected = copy(model);
    const bc = await correctBiases(corrected, floatModel, calib, {
      backend: options.backend,
      mode,
      samples: options.biasCorrectionSamples,
      batchSize: options.batchSize,
      threads: options.threads,
    });
    const after = await s.score(corrected);
    // Judged on the output's noise: one sample more or less right on the scoring data is
    // noise; a lower SQNR is not.
    const kept = after.nsr <= before.nsr;
    if (kept) adopt(model, corrected);
    quality.biasCorrection = { ...bc, kept, before, after };
  }

  if (needScores || options.biasCorrection) {
    const s = await getScorer();
    const final = await s.score(model);
    quality.score = {
      data: s.data.name,
      samples: s.samples,
      float: s.float,
      final,
      ...(s.labelled ? { drop: dropPoints(s.float, final) } : {}),
    };
  }
  quality.ms.total = performance.now() - t0;
  const after = modelStats(model).weightBytes;
  return {
    ...report,
    weightBytes: { before: weightBytesBefore, after },
    nodes: { before: nodesBefore, after: [...model.graph.allNodes()].length },
    quality,
  };
}

/**
 * `quantizeModel` with quality options: the static schemes get every tool; another scheme
 * (fp16, weight-only, linear, log2) gets equalization alone, applied before it runs.
 */
export async function quantizeWithQuality(
  model: Model,
  options: QuantizeOptions & QualityOptions,
  scheme: Scheme,
  param: string | undefined,
): Promise<QualityQuantizeReport> {
  if (scheme.name === 'uint8' || scheme.name === 'int8') return qualityQuantize(model, options, scheme.name);
  const others = QUALITY_KEYS.filter((k) => k !== 'equalize' && options[k] !== undefined && options[k] !== false);
  if (others.length > 0) {
    const flags = others.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    throw badInput(`${flags.join(', ')}: for the static schemes (uint8, int8) only, not --scheme ${options.scheme ?? scheme.name}`);
  }
  const t0 = performance.now();
  prepareForQuantization(model, options.optimize !== false);
  const equalize = equalizeCrossLayer(model);
  const report = await scheme.quantize(model, options, param);
  return { ...report, quality: { equalize, ms: { total: performance.now() - t0 } } };
}

/** The report when no layer is left for int8 (fallback or mixed precision kept them all in other forms). */
function everyLayerFloat(model: Model, scheme: string, layers: Variants['layers']): QuantizeReport {
  const n = [...model.graph.allNodes()].length;
  const bytes = modelStats(model).weightBytes;
  return {
    scheme,
    activations: 'float32',
    weights: 'float32',
    quantized: {},
    float: layers.map((l) => ({ node: l.name, op: l.op, reason: 'excluded' })),
    weightBytes: { before: bytes, after: bytes },
    nodes: { before: n, after: n },
    ms: { optimize: 0, calibrate: 0, rewrite: 0, total: 0 },
  };
}

/** The layers a mixed-precision plan keeps out of int8 (excluded from static quantization). */
function notInt8(layers: readonly MixedLayer[]): string[] {
  return layers.filter((l) => l.precision !== 'int8').map((l) => l.layer);
}

/** int4 and fp16 rewrites of a plan's layers, on a model whose int8 layers are already QDQ. */
async function rewriteMixed(m: Model, layers: readonly MixedLayer[], blockSize: number, options: QuantizeOptions): Promise<void> {
  const int4 = new Set(layers.filter((l) => l.precision === 'int4').map((l) => l.layer));
  const fp16 = new Set(layers.filter((l) => l.precision === 'fp16').map((l) => l.layer));
  if (int4.size > 0) await int4Layers(m, int4, blockSize, options.backend);
  if (fp16.size > 0) castWeightsToFp16(m, fp16);
}
