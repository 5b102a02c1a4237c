/**
 * What the weight-rewriting schemes (linear.ts, log2.ts, weight-only.ts) share: which nodes
 * carry a constant float32 weight, the axis of that weight's output channels (per-channel
 * scales) and of its input features (the axis an op sums over, along which blocks run), a small
 * editor that adds nodes and initializers under unique names, and the report they all return.
 */
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Attribute } from '../ir/attributes.js';
import { attr } from '../ir/attributes.js';
import type { DType } from '../ir/dtype.js';
import { isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { upgradeOpset } from '../ir/upgrade/index.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import { constantValue } from '../passes/match.js';
import type { QuantizeReport } from './schemes.js';

/** Ops whose weight (input 1) the weight schemes rewrite. */
export const WEIGHT_OPS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const;

export interface WeightTarget {
  node: Node;
  /** The weight input (input 1) and its float32 data. */
  value: Value;
  tensor: Tensor;
  /** Axis of the output channels: one scale per index along it, per channel. */
  channelAxis: number;
  /** Axis of the input features the op sums over (Conv also sums over its kernel dims). */
  reductionAxis: number;
}

export interface FloatEntry {
  node: string;
  op: string;
  reason: string;
}

/** Output-channel and reduction axes of a node's weight, or a reason it has none. */
function weightAxes(node: Node, w: Tensor): { channelAxis: number; reductionAxis: number } | string {
  switch (node.opType) {
    case 'Conv':
      return w.rank >= 3 ? { channelAxis: 0, reductionAxis: 1 } : `its weight has rank ${w.rank}`;
    case 'ConvTranspose':
      return w.rank >= 3 ? { channelAxis: 1, reductionAxis: 0 } : `its weight has rank ${w.rank}`;
    case 'Gemm':
      return node.int('transB', 0) ? { channelAxis: 0, reductionAxis: 1 } : { channelAxis: 1, reductionAxis: 0 };
    default:
      return w.rank >= 2 ? { channelAxis: w.rank - 1, reductionAxis: w.rank - 2 } : `its weight has rank ${w.rank}`;
  }
}

/**
 * The weight-bearing nodes of the main graph: Conv, ConvTranspose, Gemm and MatMul whose input 1
 * is a constant float32 tensor, except those `exclude` names (op type or node name). The others
 * of these op types are listed with why they stay float.
 */
export function findWeightTargets(model: Model, exclude: readonly string[] = []): { targets: WeightTarget[]; float: FloatEntry[] } {
  const skip = new Set(exclude);
  const targets: WeightTarget[] = [];
  const float: FloatEntry[] = [];
  for (const node of model.graph.nodes) {
    if (!isOnnxDomain(node.domain) || !(WEIGHT_OPS as readonly string[]).includes(node.opType)) continue;
    const entry = (reason: string): void => {
      float.push({ node: node.name || node.outputs[0]?.name || '?', op: node.opType, reason });
    };
    if (skip.has(node.opType) || (node.name && skip.has(node.name))) {
      entry('excluded');
      continue;
    }
    const v = node.input(1);
    const w = constantValue(v);
    if (!v || !w) {
      entry('its weight is not a constant');
      continue;
    }
    if (w.dtype !== 'float32') {
      entry(`its weight is ${w.dtype}, not float32`);
      continue;
    }
    const axes = weightAxes(node, w);
    if (typeof axes === 'string') {
      entry(axes);
      continue;
    }
    targets.push({ node, value: v, tensor: w, ...axes });
  }
  return { targets, float };
}

/** One-line refusal when a scheme finds nothing to rewrite. */
export function nothingToQuantize(scheme: string, float: readonly FloatEntry[]): Error {
  const why = float.length > 0 ? ` (${float.map((f) => `${f.op} "${f.node}": ${f.reason}`).join('; ')})` : '';
  return badInput(
    `nothing to quantize with ${scheme}: the model has no Conv, ConvTranspose, Gemm or MatMul with a constant float32 weight${why}`,
  );
}

/** Adds nodes (with unique names, so onnxruntime takes them) and initializers to a model's main graph. */
export class GraphEditor {
  readonly model: Model;
  private readonly names: Set<string>;

  constructor(model: Model) {
    this.model = model;
    this.names = new Set(model.graph.nodes.map((n) => n.name).filter((n) => n));
  }

  private nodeName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  initializer(name: string, t: Tensor): Value {
    return this.model.graph.addInitializer(name, t);
  }

  /** Adds a node before `before` (or at the end) and returns its output, typed as given. */
  node(
    opType: string,
    inputs: ReadonlyArray<Value | null>,
    output: string,
    type: { dtype: DType; shape?: Shape } | undefined,
    options: { attrs?: Record<string, number | number[]>; domain?: string; before?: Node } = {},
  ): Value {
    const attrs: Array<[string, Attribute]> = Object.entries(options.attrs ?? {}).map(([k, v]) => [
      k,
      Array.isArray(v) ? attr.ints(v) : attr.int(v),
    ]);
    if (options.domain && this.model.opset(options.domain) === undefined) this.model.opsetImports.set(options.domain, 1);
    const n = this.model.graph.addNode(opType, inputs, [output], {
      name: this.nodeName(`${output}_${opType}`),
      attrs,
      ...(options.domain ? { domain: options.domain } : {}),
      ...(options.before ? { before: options.before } : {}),
    });
    const out = n.output();
    if (type) out.type = { kind: 'tensor', dtype: type.dtype, ...(type.shape ? { shape: [...type.shape] } : {}) };
    return out;
  }
}

/** Dims of a per-channel scale that broadcasts against a weight of `rank` along `axis` (e.g. [C,1,1,1]). */
export function broadcastDims(rank: number, axis: number, channels: number): number[] {
  return Array.from({ length: rank }, (_, i) => (i === axis ? channels : 1));
}

/** Elements as [outer, channel, inner] around `axis`: the sizes that index a channel's elements. */
export function splitAt(dims: readonly number[], axis: number): { outer: number; channels: number; inner: number } {
  const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
  return { outer: prod(dims.slice(0, axis)), channels: dims[axis], inner: prod(dims.slice(axis + 1)) };
}

/** Minimum and maximum of each channel along `axis` (one pair for the whole tensor when `axis` is undefined). */
export function channelExtremes(data: Float32Array, dims: readonly number[], axis: number | undefined): Array<[number, number]> {
  if (axis === undefined) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const x of data) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    return [data.length ? [lo, hi] : [0, 0]];
  }
  const { outer, channels, inner } = splitAt(dims, axis);
  const out: Array<[number, number]> = Array.from({ length: channels }, () => [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const e = out[c];
      for (let i = 0; i < inner; i++) {
        const x = data[base + i];
        if (x < e[0]) e[0] = x;
        if (x > e[1]) e[1] = x;
      }
    }
  }
  return out.map((e) => (e[0] <= e[1] ? e : [0, 0]));
}

/** Channel of flat element `i` of a tensor with these dims, along `axis` (0 when `axis` is undefined). */
export function channelIndexer(dims: readonly number[], axis: number | undefined): (i: number) => number {
  if (axis === undefined) return () => 0;
  const { channels, inner } = splitAt(dims, axis);
  return (i) => Math.floor(i / inner) % channels;
}

/** Packs 4-bit codes (0…15, or −8…7 two's complement) two to a byte, the first in the low nibble (ONNX int4/uint4). */
export function pack4(codes: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i++) out[i >> 1] |= (codes[i] & 0xf) << (i & 1 ? 4 : 0);
  return out;
}

/**
 * Raises the model's default opset to `target` on a copy first (an upgrade refused halfway
 * leaves a model partly rewritten), then takes the copy's graph over. Returns why it could
 * not, or undefined.
 */
export function raiseOpset(model: Model, target: number): string | undefined {
  if ((model.opset('') ?? 0) >= target) return undefined;
  const copy = readOnnx(writeOnnx(model).model);
  try {
    upgradeOpset(copy, target);
  } catch (e) {
    return `the model cannot be raised to opset ${target} (${(e as Error).message})`;
  }
  model.graph = copy.graph;
  model.opsetImports = copy.opsetImports;
  model.irVersion = copy.irVersion;
  model.functions = copy.functions;
  inferShapes(model, { registry: defaultRegistry() });
  return undefined;
}

export function countNodes(model: Model): number {
  return [...model.graph.allNodes()].length;
}

export interface ReportParts {
  scheme: string;
  activations: string;
  weights: string;
  perChannel?: boolean;
  quantized: Record<string, number>;
  float: FloatEntry[];
  notes: string[];
  weightBytesBefore: number;
  nodesBefore: number;
  t0: number;
  tOptimized: number;
  tCalibrated: number;
  calibration?: QuantizeReport['calibration'];
}

/** Cleans up (unused initializers, order), re-infers shapes, checks the model, and builds the report. */
export function finish(model: Model, p: ReportParts): QuantizeReport {
  const registry = defaultRegistry();
  model.graph.removeUnusedInitializers();
  model.graph.topoSort();
  inferShapes(model, { registry });
  assertValid(model, 'quantized model', { registry });
  const tEnd = performance.now();
  return {
    scheme: p.scheme,
    activations: p.activations,
    weights: p.weights,
    ...(p.perChannel === undefined ? {} : { perChannel: p.perChannel }),
    ...(p.calibration ? { calibration: p.calibration } : {}),
    quantized: p.quantized,
    float: p.float,
    ...(p.notes.length > 0 ? { notes: p.notes } : {}),
    weightBytes: { before: p.weightBytesBefore, after: modelStats(model).weightBytes },
    nodes: { before: p.nodesBefore, after: countNodes(model) },
    ms: { optimize: p.tOptimized - p.t0, calibrate: p.tCalibrated - p.tOptimized, rewrite: tEnd - p.tCalibrated, total: tEnd - p.t0 },
  };
}

/** Node counts per op type, for the report. */
export function countOps(nodes: Iterable<{ opType: string }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) out[n.opType] = (out[n.opType] ?? 0) + 1;
  return out;
}
