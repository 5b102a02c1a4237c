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
import type { CalibrationMethod } from './observers.js';
import { staticQuantize } from './static.js';

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
}

export interface Scheme {
  name: string;
  summary: string;
  /** Whether the scheme needs calibration data. */
  calibration: 'required' | 'none';
  /** The parameter after the colon, described for help ("bits"), when the scheme takes one. */
  param?: string;
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
  return { scheme, param };
}
