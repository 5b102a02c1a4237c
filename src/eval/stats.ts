/**
 * Static figures of a model: node count, op histogram, parameters, weight bytes and
 * multiply-accumulates. MACs need shapes, so shape inference must have run; symbolic dims
 * (a batch `N`) count as 1 and are listed in `assumed`.
 */
import { type Graph, isOnnxDomain, type Model, type Node } from '../ir/graph.js';
import type { Dim, Shape } from '../ir/types.js';

export interface ModelStats {
  nodes: number;
  /** Node count per op type (subgraph nodes included), most frequent first. */
  ops: Record<string, number>;
  /** Elements held by initializers and Constant nodes. */
  params: number;
  weightBytes: number;
  /** Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul; null when a shape is unknown. */
  macs: number | null;
  /** Nodes whose MACs could not be counted (shape unknown). */
  uncounted: string[];
  /** Symbols that were taken as 1 to count MACs. */
  assumed: string[];
}

export function modelStats(model: Model): ModelStats {
  const ops = new Map<string, number>();
  let nodes = 0;
  let params = 0;
  let weightBytes = 0;
  const assumed = new Set<string>();
  const uncounted: string[] = [];
  let macs = 0;
  const visitGraph = (g: Graph): void => {
    for (const v of g.initializers) {
      const t = v.initializer ?? v.sparseInitializer?.values;
      if (!t) continue;
      params += v.initializer ? t.size : (v.sparseInitializer?.dims.reduce((a, b) => a * b, 1) ?? 0);
      weightBytes += t.byteLength;
    }
    for (const n of g.nodes) {
      nodes++;
      const key = isOnnxDomain(n.domain) ? n.opType : `${n.domain}.${n.opType}`;
      ops.set(key, (ops.get(key) ?? 0) + 1);
      if (n.opType === 'Constant') {
        const value = n.tensorAttr('value');
        if (value) {
          params += value.size;
          weightBytes += value.byteLength;
        }
      }
      const m = nodeMacs(n, assumed);
      if (m === null) uncounted.push(n.describe());
      else macs += m;
      for (const sg of n.subgraphs()) visitGraph(sg);
    }
  };
  visitGraph(model.graph);
  return {
    nodes,
    ops: Object.fromEntries([...ops].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    params,
    weightBytes,
    macs: uncounted.length > 0 && macs === 0 ? null : macs,
    uncounted,
    assumed: [...assumed].sort(),
  };
}

/** Dims as numbers, symbols taken as 1 (and recorded); null when any dim is unknown. */
function concrete(shape: Shape | undefined, assumed: Set<string>): number[] | null {
  if (!shape) return null;
  const out: number[] = [];
  for (const d of shape as Dim[]) {
    if (d === null) return null;
    if (typeof d === 'string') {
      assumed.add(d);
      out.push(1);
    } else {
      out.push(d);
    }
  }
  return out;
}

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

function shapeOf(n: Node, i: number, assumed: Set<string>, output = false): number[] | null {
  const v = output ? n.outputs[i] : n.inputs[i];
  const t = v?.type;
  if (t?.kind !== 'tensor') {
    const c = v?.initializer;
    return c ? [...c.dims] : null;
  }
  return concrete(t.shape, assumed);
}

/** MACs of one node: 0 for ops without multiply-accumulates, null when shapes are missing. */
export function nodeMacs(n: Node, assumed: Set<string> = new Set()): number | null {
  if (!isOnnxDomain(n.domain)) return 0;
  switch (n.opType) {
    case 'Conv':
    case 'ConvInteger':
    case 'QLinearConv': {
      const wIndex = n.opType === 'QLinearConv' ? 3 : 1;
      const w = shapeOf(n, wIndex, assumed);
      const y = shapeOf(n, 0, assumed, true);
      if (!w || !y) return null;
      // Each output element sums over (Cin / group) × kernel.
      return prod(y) * prod(w.slice(1));
    }
    case 'ConvTranspose': {
      const x = shapeOf(n, 0, assumed);
      const w = shapeOf(n, 1, assumed);
      if (!x || !w) return null;
      // Each input element scatters into (Cout / group) × kernel outputs.
      return prod(x) * prod(w.slice(1));
    }
    case 'Gemm': {
      const a = shapeOf(n, 0, assumed);
      const y = shapeOf(n, 0, assumed, true);
      if (!a || !y || a.length !== 2) return null;
      const k = n.int('transA', 0) ? a[0] : a[1];
      return prod(y) * k;
    }
    case 'MatMul':
    case 'MatMulInteger':
    case 'QLinearMatMul': {
      const a = shapeOf(n, 0, assumed);
      const y = shapeOf(n, 0, assumed, true);
      if (!a || !y) return null;
      return prod(y) * a[a.length - 1];
    }
    default:
      return 0;
  }
}
