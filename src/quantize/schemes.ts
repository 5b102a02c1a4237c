/**
 * The quantization schemes `--scheme` names, in one table. A scheme is a name, a line of help,
 * whether it needs calibration data, and the function that rewrites the model. New schemes
 * (fp16, weight-only int8/int4, log2, linear:<bits>) are added as rows here: `findScheme` splits a
 * parameter off after a colon (`linear:4` → scheme `linear`, parameter `4`) and hands it over.
 */
import type { Dataset } from '../data/dataset.js';
import { badInput } from '../errors.js';
import type { Model } from '../ir/graph.js';
import type { Backend } from '../runtime/backend.js';
import { fp16Convert } from './fp16.js';
import { linearQuantizeModel, parseLinearBits } from './linear.js';
import { log2QuantizeModel } from './log2.js';
import type { CalibrationMethod } from './observers.js';
import { staticQuantize } from './static.js';
import { weightOnlyQuantize } from './weight-only.js';

export interface QuantizeOptions {
  /** A name from SCHEMES, with its parameter after a colon where it takes one (default uint8). */
  scheme?: string;
  /** Calibration samples (schemes that calibrate). */
  calib?: Dataset;
  method?: CalibrationMethod;
  /** Calibration samples to use (default 256). */
  calibSize?: number;
  /** Percentile for method 'percentile' (default 99.99). */
  percentile?: number;
  /** Per-channel weight scales (default true). */
  perChannel?: boolean;
  /** Symmetric activation grids (zero point 0) instead of asymmetric ones. */
  symmetricActivations?: boolean;
  /** Op types or node names kept in float. */
  exclude?: readonly string[];
  /** Runs calibration (onnxruntime-node in Node). */
  backend: Backend;
  threads?: number;
  batchSize?: number;
  /** Run the graph optimizer first (default true): folded BatchNorm and Identity-free constants are what runtimes fuse. */
  optimize?: boolean;
  onProgress?: (done: number, total: number) => void;
  // ---- options of the other schemes (linear, log2, fp16, weight-int8/int4)
  /** linear:<b>: quantize the activations entering rewritten ops too, on the same b-bit grid (calibrates). */
  activations?: boolean;
  /** weight-int4: weights per block of this many input features (default 32). */
  blockSize?: number;
  /** fp16: graph inputs and outputs stay float32, with Casts inside (default true). */
  keepIoTypes?: boolean;
  /** fp16: op types or node names kept in float32 besides the built-in block list. */
  fp16Block?: readonly string[];
}

export interface ScaleSummary {
  count: number;
  min: number;
  median: number;
  max: number;
}

export interface QuantizeReport {
  scheme: string;
  /** Element types of activations and weights. */
  activations?: string;
  weights?: string;
  perChannel?: boolean;
  symmetricActivations?: boolean;
  calibration?: {
    data: string;
    method: CalibrationMethod;
    samples: number;
    batches: number;
    /** Wall time of calibration, and of its inference alone. */
    ms: number;
    inferenceMs: number;
  };
  /** Nodes now computing in 8 bits, by op type. */
  quantized: Record<string, number>;
  /** Conv/Gemm/MatMul-like nodes left in float, with why. */
  float: Array<{ node: string; op: string; reason: string }>;
  tensors?: { activations: number; absorbed: number; weights: number; biases: number; biasClamped: number };
  scales?: { activations: ScaleSummary; weights: ScaleSummary };
  /** Bytes of weights (initializers) before and after. */
  weightBytes: { before: number; after: number };
  nodes: { before: number; after: number };
  ms: { optimize: number; calibrate: number; rewrite: number; total: number };
  /** What the scheme could not do as asked, and what it did instead (storage fallbacks, …). */
  notes?: string[];
}

export interface Scheme {
  name: string;
  summary: string;
  /** Whether the scheme needs calibration data ('optional': only with some options, e.g. linear's activations). */
  calibration: 'required' | 'optional' | 'none';
  /** The parameter after the colon, described for help ("bits"), when the scheme takes one. */
  param?: string;
  /** Checks the parameter before any work; throws a one-line bad-input error. */
  checkParam?(param: string | undefined): void;
  quantize(model: Model, options: QuantizeOptions, param: string | undefined): Promise<QuantizeReport>;
}

export const SCHEMES: readonly Scheme[] = [
  {
    name: 'uint8',
    summary:
      'static int8: uint8 asymmetric activations, int8 symmetric per-channel weights, int32 biases (U8S8, what onnxruntime fuses on x86)',
    calibration: 'required',
    quantize: (model, options) => staticQuantize(model, options, 'uint8'),
  },
  {
    name: 'int8',
    summary:
      'static int8: int8 activations (asymmetric, or symmetric with symmetricActivations), int8 per-channel weights (S8S8: TFLite, ARM)',
    calibration: 'required',
    quantize: (model, options) => staticQuantize(model, options, 'int8'),
  },
  {
    name: 'linear',
    summary:
      "the seed's linear quantization q = round((r − z_r)/(z_p − z_r)·(2^b − 1)) at b = 2…8 bits: weights (uint4 for b ≤ 4, else uint8), per tensor or --per-channel; activations too with --activations (calibrates)",
    calibration: 'optional',
    param: 'bits',
    checkParam: (param) => {
      parseLinearBits(param);
    },
    quantize: linearQuantizeModel,
  },
  {
    name: 'log2',
    summary:
      "the seed's log quantization q = round(log2(|r|/s + 1))·sign(r) of weights (int8 exponents −7…7, a scale s per tensor or --per-channel), expanded by standard ops",
    calibration: 'none',
    quantize: log2QuantizeModel,
  },
  {
    name: 'fp16',
    summary:
      'float16 weights and compute; inputs and outputs stay float32 (--no-keep-io-types to change them); --fp16-block keeps more ops in float32',
    calibration: 'none',
    quantize: fp16Convert,
  },
  {
    name: 'weight-int8',
    summary: 'weight-only int8: symmetric per-channel int8 weights behind DequantizeLinear, float activations',
    calibration: 'none',
    quantize: (model, options) => weightOnlyQuantize(model, options, 8),
  },
  {
    name: 'weight-int4',
    summary:
      'weight-only int4, block-wise (--block-size, default 32): com.microsoft.MatMulNBits for MatMul and Gemm, blocked uint4 DequantizeLinear (opset 21) for Conv, float activations',
    calibration: 'none',
    quantize: (model, options) => weightOnlyQuantize(model, options, 4),
  },
];

export function schemeNames(): string[] {
  return SCHEMES.map((s) => (s.param ? `${s.name}:<${s.param}>` : s.name));
}

/** Looks a `--scheme` value up: the name before a colon picks the row, the rest is its parameter. */
export function findScheme(spec: string): { scheme: Scheme; param: string | undefined } {
  const colon = spec.indexOf(':');
  const name = colon >= 0 ? spec.slice(0, colon) : spec;
  const param = colon >= 0 ? spec.slice(colon + 1) : undefined;
  const scheme = SCHEMES.find((s) => s.name === name);
  if (!scheme) throw badInput(`--scheme ${spec}: no such scheme; the schemes are ${schemeNames().join(', ')}`);
  if (param !== undefined && !scheme.param) throw badInput(`--scheme ${spec}: ${name} takes no parameter`);
  if (param === undefined && scheme.param) throw badInput(`--scheme ${spec}: ${name} needs a parameter (${name}:<${scheme.param}>)`);
  scheme.checkParam?.(param);
  return { scheme, param };
}
