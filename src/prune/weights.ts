/**
 * Unstructured and semi-structured weight pruning: masks over the weight matrices of Conv,
 * ConvTranspose, Gemm and MatMul. Magnitude pruning keeps the largest |w| (the seed's score),
 * with one threshold per layer or one for the whole model; N:M keeps the N largest of every M
 * consecutive weights along the input-channel axis (2:4 is what sparse tensor cores run). Masks
 * are 0/1 Float32Arrays keyed by initializer name, the form the trainer takes to keep masked
 * weights at zero through fine-tuning.
 */
import { badInput } from '../errors.js';
import { isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import { checkFraction } from './filter.js';

export type Masks = Map<string, Float32Array>;

/** A prunable weight and the axis of its input channels (the axis N:M groups run along). */
export interface PrunableWeight {
  value: Value;
  node: Node;
  inputAxis: number;
}

/** Float32 initializers read as weights by Conv, ConvTranspose, Gemm and MatMul. */
export function prunableWeights(model: Model): PrunableWeight[] {
  const out: PrunableWeight[] = [];
  const seen = new Set<Value>();
  for (const node of model.graph.nodes) {
    if (!isOnnxDomain(node.domain)) continue;
    const w = node.input(1);
    const t = w?.initializer;
    if (!w || !t || w.isGraphInput || t.dtype !== 'float32' || seen.has(w)) continue;
    let inputAxis: number;
    switch (node.opType) {
      case 'Conv':
        if (t.rank < 3) continue;
        inputAxis = 1;
        break;
      case 'ConvTranspose':
        if (t.rank < 3) continue;
        inputAxis = 0;
        break;
      case 'Gemm':
        if (t.rank !== 2) continue;
        inputAxis = node.int('transB', 0) ? 1 : 0;
        break;
      case 'MatMul':
        if (t.rank !== 2) continue;
        inputAxis = 0;
        break;
      default:
        continue;
    }
    seen.add(w);
    out.push({ value: w, node, inputAxis });
  }
  return out;
}

function requireWeights(model: Model): PrunableWeight[] {
  const ws = prunableWeights(model);
  if (ws.length === 0) throw badInput('the model has no prunable layer (Conv, ConvTranspose, Gemm or MatMul with float32 weights)');
  return ws;
}

/** Mask keeping all but the `k` smallest |w| (ties broken by position, so exactly k go). */
function maskSmallest(values: Float32Array[], k: number): Float32Array[] {
  const total = values.reduce((s, v) => s + v.length, 0);
  const masks = values.map((v) => new Float32Array(v.length).fill(1));
  if (k <= 0) return masks;
  const all = new Float32Array(total);
  let o = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) all[o++] = Math.abs(v[i]);
  const sorted = Float32Array.from(all).sort();
  const t = sorted[Math.min(k, total) - 1];
  let below = 0;
  for (let i = 0; i < total; i++) if (all[i] < t) below++;
  let ties = k - below;
  o = 0;
  values.forEach((v, j) => {
    for (let i = 0; i < v.length; i++, o++) {
      const a = all[o];
      if (a < t) masks[j][i] = 0;
      else if (a === t && ties > 0) {
        masks[j][i] = 0;
        ties--;
      }
    }
  });
  return masks;
}

export interface MagnitudeOptions {
  /** Fraction of weights to zero, in (0, 1). */
  sparsity: number;
  /** One threshold per layer (default) or one across all layers. */
  scope?: 'layer' | 'global';
}

export function magnitudeMasks(model: Model, options: MagnitudeOptions): Masks {
  const s = options.sparsity;
  checkFraction('--sparsity', s);
  const ws = requireWeights(model);
  const data = ws.map((w) => (w.value.initializer as Tensor).data as Float32Array);
  const masks: Masks = new Map();
  if (options.scope === 'global') {
    const total = data.reduce((a, d) => a + d.length, 0);
    const all = maskSmallest(data, Math.round(s * total));
    for (let i = 0; i < ws.length; i++) masks.set(ws[i].value.name, all[i]);
  } else {
    for (let i = 0; i < ws.length; i++) masks.set(ws[i].value.name, maskSmallest([data[i]], Math.round(s * data[i].length))[0]);
  }
  return masks;
}

/** `2:4` → {n: 2, m: 4}; refuses anything but 0 < n < m. */
export function parsePattern(text: string): { n: number; m: number } {
  const match = /^(\d+):(\d+)$/.exec(text.trim());
  const n = match ? Number(match[1]) : Number.NaN;
  const m = match ? Number(match[2]) : Number.NaN;
  if (!match || !(n > 0) || !(m > n) || m > 64) {
    throw badInput(`--pattern ${text}: expected N:M with 0 < N < M ≤ 64, such as 2:4 (keep N of every M weights)`);
  }
  return { n, m };
}

/**
 * N:M masks: along the input-channel axis, each run of M consecutive weights keeps its N largest
 * |w|. A tail shorter than M (input channels not a multiple of M) stays dense.
 */
export function nmMasks(model: Model, n: number, m: number): Masks {
  const masks: Masks = new Map();
  for (const w of requireWeights(model)) {
    const t = w.value.initializer as Tensor;
    const data = t.data as Float32Array;
    const dims = t.dims;
    const axis = w.inputAxis;
    const len = dims[axis];
    const inner = shapeSize(dims.slice(axis + 1));
    const outer = shapeSize(dims.slice(0, axis));
    const mask = new Float32Array(data.length).fill(1);
    const idx: number[] = [];
    for (let o = 0; o < outer; o++) {
      for (let start = 0; start + m <= len; start += m) {
        for (let i = 0; i < inner; i++) {
          idx.length = 0;
          for (let j = 0; j < m; j++) idx.push((o * len + start + j) * inner + i);
          idx.sort((a, b) => Math.abs(data[a]) - Math.abs(data[b]) || a - b);
          for (let j = 0; j < m - n; j++) mask[idx[j]] = 0;
        }
      }
    }
    masks.set(w.value.name, mask);
  }
  return masks;
}

/** Multiplies the masked initializers by their masks (new tensors; the old views are not touched). */
export function applyMasks(model: Model, masks: ReadonlyMap<string, Float32Array>): void {
  for (const v of model.graph.initializers) {
    const mask = masks.get(v.name);
    const t = v.initializer;
    if (!mask || !t) continue;
    const src = t.data as Float32Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = mask[i] === 0 ? 0 : src[i];
    v.initializer = Tensor.from('float32', t.dims, out);
  }
}

export interface LayerSparsity {
  name: string;
  op: string;
  weights: number;
  zeros: number;
  sparsity: number;
}

/** Zero weights per prunable layer. */
export function weightSparsity(model: Model): LayerSparsity[] {
  return prunableWeights(model).map((w) => {
    const d = (w.value.initializer as Tensor).data as Float32Array;
    let zeros = 0;
    for (let i = 0; i < d.length; i++) if (d[i] === 0) zeros++;
    return { name: w.value.name, op: w.node.opType, weights: d.length, zeros, sparsity: zeros / d.length };
  });
}

/**
 * Gradual pruning schedule (Zhu & Gupta 2017): the sparsity after round `k` of `rounds` rises as
 * s_k = s_f · (1 − (1 − k/rounds)³), fast at first while the network has redundancy to lose.
 */
export function gradualSparsity(final: number, k: number, rounds: number): number {
  const t = Math.min(1, Math.max(0, k / rounds));
  return final * (1 - (1 - t) ** 3);
}
