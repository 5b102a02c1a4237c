/**
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization
 * and Bias Correction", 2019). For two convolutions A → B joined by ops f that are positively
 * homogeneous per channel (f(x / s) = f(x) / s for s > 0: ReLU, LeakyReLU, PReLU, max and
 * average pooling), scaling output channel i of A by 1/sᵢ (weights and bias) and input channel i
 * of B by sᵢ leaves B's output unchanged. The DFQ rule picks sᵢ = √(r1ᵢ · r2ᵢ) / r2ᵢ, with r1ᵢ the
 * range of A's output channel i and r2ᵢ that of B's input channel i, so both become √(r1ᵢ r2ᵢ):
 * the channels of A's weights, of the tensor between A and B, and B's input columns no longer
 * span orders of magnitude, which is what a per-tensor 8-bit grid cannot represent. Depthwise
 * convolutions, whose channels are quantized from nine weights each, are where this matters.
 *
 * Chains (A → B → C with B depthwise) are swept pair by pair until the scales settle.
 *
 * Ranges come from the weights (data-free, the paper's rule) or, given calibrated per-channel
 * ranges of the tensor B reads, r1ᵢ is that tensor's range: what the activation grid between A
 * and B sees, after the bias too.
 *
 * Never equalized: Clip with an upper bound (ReLU6): Clip(x / s, 0, 6) ≠ Clip(x, 0, 6) / s, and
 * Clip's bounds are scalars, so they cannot scale per channel; HardSwish, Sigmoid and the like,
 * which are not homogeneous; a tensor read by more than one node or that is a graph output; a
 * weight or bias shared with another node.
 */
import type { Dataset } from '../data/dataset.js';
import { sampleOrder } from '../data/dataset.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantValue } from '../passes/match.js';
import type { Backend } from '../runtime/backend.js';
import { batchSizeFor, DEFAULT_CALIB_BATCH, DEFAULT_CALIB_SIZE, singleInput } from './calibrate.js';

/** Ops between A and B through which a per-channel scale passes unchanged. */
const HOMOGENEOUS_OPS = ['Relu', 'LeakyRelu', 'PRelu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool'];

export interface EqualizePair {
  /** Names of A and B (node names, or output names for unnamed nodes). */
  first: string;
  second: string;
  /** Op types between them. */
  through: string[];
  channels: number;
  /** Whether A, B are depthwise. */
  depthwise: [boolean, boolean];
}

export interface EqualizeReport {
  pairs: EqualizePair[];
  /** Pairs that looked like candidates but were left alone, with why. */
  skipped: Array<{ first: string; second: string; reason: string }>;
  /** Sweeps over the pairs until every scale was within the tolerance of 1. */
  iterations: number;
  /** Which ranges set the scales. */
  ranges: 'weights' | 'activations';
  /**
   * Spread of per-channel ranges, before and after: the median over pairs of the widest output
   * channel of A's weights over its median channel — how much of a per-tensor grid the typical
   * channel gets.
   */
  spread: { before: number; after: number };
}

export interface EqualizeOptions {
  /** Sweeps at most (default 20). */
  maxIterations?: number;
  /** Stop once every |log sᵢ| of a sweep is below this (default 1e-3). */
  tolerance?: number;
  /**
   * Per-channel max |x| of the tensors the second convolutions read (by value name), from
   * `channelRanges`. Given, they set r1 instead of A's weights.
   */
  activationRanges?: ReadonlyMap<string, Float64Array>;
}

interface Pair {
  a: Node;
  b: Node;
  /** The values from A's output to B's input, in order. */
  chain: Value[];
  through: string[];
  channels: number;
}

function label(n: Node): string {
  return n.name || n.output().name;
}

/** A constant float32 initializer of this graph read only by `node` (so it may be rewritten in place). */
function ownInitializer(v: Value | null, node: Node): Tensor | undefined {
  if (!v?.initializer || v.isGraphInput || v.isGraphOutput) return undefined;
  if (v.uses.some((u) => u.node !== node)) return undefined;
  const t = v.initializer;
  return t.dtype === 'float32' ? t : undefined;
}

function isDepthwise(conv: Node, w: Tensor): boolean {
  const group = conv.int('group', 1);
  return group > 1 && w.dims[1] === 1 && w.dims[0] === group;
}

function isOnnxOp(n: Node, ...ops: string[]): boolean {
  return isOnnxDomain(n.domain) && ops.includes(n.opType);
}

/** Why `n` does not pass a per-channel scale through, or undefined when it does. */
function blocker(n: Node): string | undefined {
  if (isOnnxOp(n, ...HOMOGENEOUS_OPS)) {
    if (n.opType === 'MaxPool' && n.outputs.filter((o) => o).length > 1) return 'MaxPool with indices';
    if (n.opType === 'PRelu') {
      const slope = constantValue(n.input(1));
      if (!slope) return 'PRelu with a computed slope';
    }
    return undefined;
  }
  if (isOnnxOp(n, 'Clip')) {
    const lo = n.input(1) ? constantValue(n.input(1)) : undefined;
    const hasHi = !!n.input(2);
    if (!hasHi && (!n.input(1) || (lo?.size === 1 && lo.scalarValue() === 0))) return undefined;
    return 'Clip with bounds (ReLU6 is not positively homogeneous: its bounds would have to scale per channel)';
  }
  return `${n.opType} is not positively homogeneous`;
}

/** Conv → (homogeneous ops) → Conv pairs whose scaling keeps the graph's function. */
export function findPairs(g: Graph): { pairs: Pair[]; skipped: EqualizeReport['skipped'] } {
  const pairs: Pair[] = [];
  const skipped: EqualizeReport['skipped'] = [];
  for (const a of g.nodes) {
    if (!isOnnxOp(a, 'Conv')) continue;
    const wa = ownInitializer(a.input(1), a);
    if (!wa || wa.rank < 3) continue;
    const group = a.int('group', 1);
    if (group > 1 && !isDepthwise(a, wa)) continue;
    if (a.input(2) && !ownInitializer(a.input(2), a)) continue;
    if (a.outputs.filter((o) => o).length !== 1) continue;
    // Follow the single-use chain.
    const chain: Value[] = [a.output()];
    const through: string[] = [];
    let v = a.output();
    let b: Node | undefined;
    let reason: string | undefined;
    for (;;) {
      if (v.isGraphOutput) {
        reason = 'a graph output lies between them';
        break;
      }
      if (v.uses.length !== 1) {
        reason = v.uses.length === 0 ? 'unused output' : `${v.name} has ${v.uses.length} readers`;
        break;
      }
      const next = v.uses[0].node;
      if (isOnnxOp(next, 'Conv')) {
        if (v.uses[0].index !== 0) reason = 'feeds a weight';
        else b = next;
        break;
      }
      if (v.uses[0].index !== 0) {
        reason = `${next.opType} reads it as a parameter`;
        break;
      }
      reason = blocker(next);
      if (reason) break;
      through.push(next.opType);
      v = next.output();
      chain.push(v);
    }
    if (!b) {
      // Only a blocked path to a Conv is worth reporting.
      if (reason && chain.length > 0) {
        const last = chain[chain.length - 1];
        const after = last.uses.length === 1 ? last.uses[0].node : undefined;
        const conv = after && !isOnnxOp(after, 'Conv') ? findConvAhead(after) : undefined;
        if (conv) skipped.push({ first: label(a), second: label(conv), reason });
      }
      continue;
    }
    const wb = ownInitializer(b.input(1), b);
    if (!wb || wb.rank < 3) {
      skipped.push({ first: label(a), second: label(b), reason: 'the second weight is not a float initializer of its own' });
      continue;
    }
    const channels = wa.dims[0];
    const inPerGroup = wb.dims[1];
    const groupB = b.int('group', 1);
    if (inPerGroup * groupB !== channels) {
      skipped.push({ first: label(a), second: label(b), reason: 'channel counts do not line up' });
      continue;
    }
    pairs.push({ a, b, chain, through, channels });
  }
  return { pairs, skipped };
}

/** A Conv reachable from `n` through single-use, single-output nodes (for skip reports). */
function findConvAhead(n: Node): Node | undefined {
  let cur: Node = n;
  for (let hops = 0; hops < 4; hops++) {
    const out: Value | null = cur.outputs[0];
    if (out?.uses.length !== 1) return undefined;
    cur = out.uses[0].node;
    if (isOnnxOp(cur, 'Conv')) return cur;
  }
  return undefined;
}

/** max |w| per output channel (axis 0). */
function outputRanges(w: Float32Array, channels: number): Float64Array {
  const per = w.length / channels;
  const r = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let k = c * per; k < (c + 1) * per; k++) m = Math.max(m, Math.abs(w[k]));
    r[c] = m;
  }
  return r;
}

/** max |w| per input channel of B (global channel index across groups). */
function inputRanges(w: Float32Array, dims: readonly number[], group: number): Float64Array {
  const [out, inPerGroup] = dims;
  const spatial = dims.slice(2).reduce((x, y) => x * y, 1);
  const outPerGroup = out / group;
  const r = new Float64Array(inPerGroup * group);
  for (let o = 0; o < out; o++) {
    const g = Math.floor(o / outPerGroup);
    for (let j = 0; j < inPerGroup; j++) {
      const base = (o * inPerGroup + j) * spatial;
      let m = r[g * inPerGroup + j];
      for (let k = 0; k < spatial; k++) m = Math.max(m, Math.abs(w[base + k]));
      r[g * inPerGroup + j] = m;
    }
  }
  return r;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 1;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The widest channel's range over the median channel's (1 for an empty or all-zero list). */
function spreadOf(r: Float64Array): number {
  const s = [...r].sort((a, b) => a - b);
  const mid = s[Math.floor(s.length / 2)];
  return mid > 0 ? s[s.length - 1] / mid : 1;
}

/**
 * Equalizes every eligible pair of the model's main graph in place. The model should be prepared
 * (prepareForQuantization: BatchNorm folded, so each convolution's weight is one initializer).
 */
export function equalizeCrossLayer(model: Model, options: EqualizeOptions = {}): EqualizeReport {
  const g = model.graph;
  const { pairs, skipped } = findPairs(g);
  const maxIterations = options.maxIterations ?? 20;
  const tolerance = options.tolerance ?? 1e-3;
  const acts = options.activationRanges;
  // Working copies of weights and biases (float64 would not change the result: scales are applied once per sweep).
  const weights = new Map<Value, Float32Array>();
  const work = (v: Value): Float32Array => {
    let w = weights.get(v);
    if (!w) {
      w = Float32Array.from((v.initializer as Tensor).toFloat32());
      weights.set(v, w);
    }
    return w;
  };
  // Per-channel ranges of the tensors B reads, updated as their channels scale.
  const actRanges = new Map<string, Float64Array>();
  const useActs = !!acts && pairs.some((p) => acts.has(p.chain[p.chain.length - 1].name));
  if (acts)
    for (const p of pairs) {
      const name = p.chain[p.chain.length - 1].name;
      const r = acts.get(name);
      if (r && r.length === p.channels) actRanges.set(name, Float64Array.from(r));
    }
  const spreads = (): number => median(pairs.map((p) => spreadOf(outputRanges(work(p.a.input(1) as Value), p.channels))));
  const before = spreads();
  let iterations = 0;
  for (; iterations < maxIterations && pairs.length > 0; ) {
    iterations++;
    let worst = 0;
    for (const p of pairs) {
      const wa = work(p.a.input(1) as Value);
      const wbValue = p.b.input(1) as Value;
      const wb = work(wbValue);
      const dimsB = (wbValue.initializer as Tensor).dims;
      const groupB = p.b.int('group', 1);
      const between = p.chain[p.chain.length - 1].name;
      const act = actRanges.get(between);
      const r1 = act ?? outputRanges(wa, p.channels);
      const r2 = inputRanges(wb, dimsB, groupB);
      const s = new Float64Array(p.channels);
      for (let i = 0; i < p.channels; i++) {
        const ok = r1[i] > 0 && r2[i] > 0 && Number.isFinite(r1[i]) && Number.isFinite(r2[i]);
        s[i] = ok ? Math.sqrt(r1[i] * r2[i]) / r2[i] : 1;
        worst = Math.max(worst, Math.abs(Math.log(s[i])));
      }
      scaleOutputs(wa, p.channels, s);
      const bias = p.a.input(2);
      if (bias) {
        const b = work(bias);
        for (let i = 0; i < p.channels; i++) b[i] /= s[i];
      }
      scaleInputs(wb, dimsB, groupB, s);
      // B's output does not change; the tensor between A and B shrinks by sᵢ per channel.
      if (act) for (let i = 0; i < p.channels; i++) act[i] /= s[i];
    }
    if (worst < tolerance) break;
  }
  const after = spreads();
  for (const [v, w] of weights) {
    const t = v.initializer as Tensor;
    v.initializer = Tensor.from('float32', t.dims, w);
  }
  return {
    pairs: pairs.map((p) => {
      const wa = p.a.input(1)?.initializer as Tensor;
      const wb = p.b.input(1)?.initializer as Tensor;
      return {
        first: label(p.a),
        second: label(p.b),
        through: p.through,
        channels: p.channels,
        depthwise: [isDepthwise(p.a, wa), isDepthwise(p.b, wb)],
      };
    }),
    skipped,
    iterations,
    ranges: useActs ? 'activations' : 'weights',
    spread: { before, after },
  };
}

function scaleOutputs(w: Float32Array, channels: number, s: Float64Array): void {
  const per = w.length / channels;
  for (let c = 0; c < channels; c++) {
    const f = 1 / s[c];
    for (let k = c * per; k < (c + 1) * per; k++) w[k] *= f;
  }
}

function scaleInputs(w: Float32Array, dims: readonly number[], group: number, s: Float64Array): void {
  const [out, inPerGroup] = dims;
  const spatial = dims.slice(2).reduce((x, y) => x * y, 1);
  const outPerGroup = out / group;
  for (let o = 0; o < out; o++) {
    const g = Math.floor(o / outPerGroup);
    for (let j = 0; j < inPerGroup; j++) {
      const f = s[g * inPerGroup + j];
      const base = (o * inPerGroup + j) * spatial;
      for (let k = 0; k < spatial; k++) w[base + k] *= f;
    }
  }
}

/** The tensors the second convolution of each eligible pair reads (what `channelRanges` should measure). */
export function equalizationTensors(model: Model): string[] {
  return findPairs(model.graph).pairs.map((p) => p.chain[p.chain.length - 1].name);
}

/**
 * Per-channel max |x| of the named N×C×… tensors over calibration data, measured on onnxruntime
 * (Abs → GlobalMaxPool inside the graph, so only C numbers per sample cross into JavaScript).
 */
export async function channelRanges(
  model: Model,
  names: readonly string[],
  data: Dataset,
  backend: Backend,
  options: { limit?: number; batchSize?: number; threads?: number } = {},
): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  if (names.length === 0) return out;
  const copy = readOnnx(writeOnnx(model).model);
  const g = copy.graph;
  const byName = new Map<string, Value>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) byName.set(o.name, o);
  const input = singleInput(copy);
  g.outputs.splice(0, g.outputs.length);
  const fetch: Array<[string, string]> = [];
  for (const name of names) {
    const v = byName.get(name);
    const rank = v?.type?.kind === 'tensor' ? v.type.shape?.length : undefined;
    if (!v || rank === undefined || rank < 3) continue;
    const abs = g.addNode('Abs', [v], [`${name}__abs`]).output();
    const max = g.addNode('GlobalMaxPool', [abs], [`${name}__chanmax`]).output();
    max.type = { kind: 'tensor', dtype: 'float32' };
    g.addOutput(max);
    fetch.push([name, max.name]);
  }
  if (fetch.length === 0) return out;
  const { size: batchSize, fixed } = batchSizeFor(input, options.batchSize ?? DEFAULT_CALIB_BATCH);
  const session = await backend.createSession(copy, { threads: options.threads, memoryPattern: false });
  try {
    const order = sampleOrder(data.size, { shuffle: true, seed: 0, limit: options.limit ?? DEFAULT_CALIB_SIZE });
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.subarray(start, Math.min(order.length, start + batchSize));
      if (fixed && idx.length !== batchSize) break;
      const batch = await data.batch(idx);
      const res = await session.run(
        { [input.name]: batch.input },
        fetch.map((f) => f[1]),
      );
      for (const [name, key] of fetch) {
        const t = res[key];
        const [n, c] = t.dims;
        const d = t.toFloat32();
        let r = out.get(name);
        if (!r) {
          r = new Float64Array(c);
          out.set(name, r);
        }
        for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) if (d[i * c + k] > r[k]) r[k] = d[i * c + k];
      }
    }
  } finally {
    await session.release();
  }
  return out;
}
