/**
 * Channel surgery: once the classes to remove are chosen, every recorded edit is made (weights
 * and biases sliced, BatchNormalization parameters and per-channel constants sliced, depthwise
 * group counts, Split sizes and Reshape targets updated) and the channel dims of the values'
 * types follow. The result is a smaller dense model computing the same function on the kept
 * channels.
 */
import type { Graph, Node, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { inferShapes } from '../ops/infer.js';
import { addConstant, removeIfDead } from '../passes/edit.js';
import type { ChannelAnalysis } from './analyze.js';
import { type ChannelMap, constantInput } from './channels.js';
import { expandBlocks, takeAlong } from './slice.js';

/** Positions of a map whose channel is kept. */
export function keptPositions(analysis: ChannelAnalysis, m: ChannelMap, removed: ReadonlySet<number>): number[] {
  const out: number[] = [];
  m.refs.forEach((id, p) => {
    if (id < 0 || !removed.has(analysis.sets.find(id))) out.push(p);
  });
  return out;
}

/** Gives input `index` of `node` a new constant value (in place when nothing else reads the old one). */
function replaceConstant(node: Node, index: number, t: Tensor): void {
  const v = node.input(index) as Value;
  if (v.initializer && !v.isGraphInput && v.uses.length === 1) {
    v.initializer = t;
    v.type = { kind: 'tensor', dtype: t.dtype, shape: [...t.dims] };
    return;
  }
  node.setInput(index, addConstant(node.graph, v.name, t));
}

function removeDeadConstants(g: Graph): void {
  for (const n of [...g.nodes]) {
    if (n.opType === 'Constant' || n.opType === 'Identity') removeIfDead(n);
  }
  g.removeUnusedInitializers();
}

export function applyRemoval(analysis: ChannelAnalysis, removed: ReadonlySet<number>): void {
  const { maps, model } = analysis;
  const cache = new Map<ChannelMap, number[]>();
  const kept = (v: Value): { keep: number[]; map: ChannelMap } => {
    const map = maps.get(v) as ChannelMap;
    let keep = cache.get(map);
    if (!keep) {
      keep = keptPositions(analysis, map, removed);
      cache.set(map, keep);
    }
    return { keep, map };
  };
  for (const e of analysis.edits) {
    const { keep, map } = kept(e.by);
    if (keep.length === map.refs.length) continue;
    switch (e.kind) {
      case 'slice': {
        const t = constantInput(e.node.input(e.input)) as Tensor;
        replaceConstant(e.node, e.input, takeAlong(t, e.axis, expandBlocks(keep, map.block)));
        break;
      }
      case 'group':
        e.node.attrs.set('group', { type: 'int', value: keep.length });
        break;
      case 'split': {
        const sizes: number[] = [];
        let offset = 0;
        for (const d of e.sizes) {
          sizes.push(keep.filter((p) => p >= offset && p < offset + d).length);
          offset += d;
        }
        const opset = model.opset('') ?? 13;
        if (opset < 13) {
          e.node.attrs.set('split', { type: 'ints', value: sizes });
        } else {
          e.node.attrs.delete('num_outputs');
          const t = Tensor.from('int64', [sizes.length], sizes);
          if (e.node.input(1)) replaceConstant(e.node, 1, t);
          else e.node.setInput(1, addConstant(e.node.graph, `${e.node.name || 'split'}_sizes`, t));
        }
        break;
      }
      case 'reshape': {
        const t = constantInput(e.node.input(1)) as Tensor;
        const dims = t.toNumbers();
        dims[e.dim] = keep.length * e.factor;
        replaceConstant(e.node, 1, Tensor.from(t.dtype, t.dims, dims));
        break;
      }
    }
  }
  // Channel dims of the values' types follow the kept positions.
  for (const [v, m] of maps) {
    const t = v.type;
    if (t?.kind !== 'tensor' || !t.shape || v.isGraphOutput) continue;
    const { keep } = kept(v);
    const shape = [...t.shape];
    if (typeof shape[m.axis] === 'number') shape[m.axis] = keep.length * m.block;
    v.type = { ...t, shape };
  }
  removeDeadConstants(model.graph);
  inferShapes(model);
}
