/**
 * Channel dependency analysis: which output channels of which layers can be removed together,
 * and what else has to change when they are. One walk in topological order gives every prunable
 * layer's outputs fresh channel ids, carries them forward through the ops that keep channels
 * apart (rules.ts), ties them where ops combine channels position by position, and records the
 * edits the removal will need (weights of the next layers, BatchNormalization parameters,
 * per-channel constants, Split sizes). Channels that reach a graph output, or an op the rules do
 * not understand, are pinned with the reason.
 */
import { type Graph, isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { type ChannelMap, ChannelSets, constantInput, type Edit, type MacNode, type Root, type RootKind } from './channels.js';
import { propagate } from './rules.js';

export interface ChannelAnalysis {
  model: Model;
  roots: Root[];
  sets: ChannelSets;
  maps: Map<Value, ChannelMap>;
  edits: Edit[];
  macNodes: MacNode[];
}

/** The analysis state the per-op rules read and extend. */
export class Analyzer {
  readonly sets = new ChannelSets();
  readonly roots: Root[] = [];
  readonly maps = new Map<Value, ChannelMap>();
  readonly edits: Edit[] = [];
  readonly macNodes: MacNode[] = [];
  readonly opset: number;

  constructor(readonly model: Model) {
    this.opset = model.opset('') ?? 13;
  }

  map(v: Value | null | undefined): ChannelMap | undefined {
    return v ? this.maps.get(v) : undefined;
  }

  set(v: Value | null | undefined, m: ChannelMap): void {
    if (v) this.maps.set(v, m);
  }

  constant(v: Value | null | undefined): Tensor | undefined {
    return constantInput(v);
  }

  /** Static or symbolic shape of a value (a constant's dims when it has no type). */
  shape(v: Value | null | undefined): Shape | undefined {
    if (!v) return undefined;
    const c = constantInput(v);
    if (c) return [...c.dims];
    const t = v.type;
    return t?.kind === 'tensor' ? t.shape : undefined;
  }

  pinAll(m: ChannelMap, reason: string): void {
    for (const id of m.refs) this.sets.pin(id, reason);
  }

  /** Pins every channel-carrying input of `node`; its outputs carry no channels. */
  refuse(node: Node, reason: string): void {
    for (const v of node.inputs) {
      const m = this.map(v);
      if (m) this.pinAll(m, reason);
    }
  }

  /** Ties two maps position by position; false when their channel counts differ. */
  tie(a: ChannelMap, b: ChannelMap, reason: string): boolean {
    if (a.refs.length !== b.refs.length || a.block !== b.block) return false;
    for (let i = 0; i < a.refs.length; i++) {
      const x = a.refs[i];
      const y = b.refs[i];
      if (x >= 0 && y >= 0) this.sets.union(x, y);
      else if (x >= 0) this.sets.pin(x, reason);
      else if (y >= 0) this.sets.pin(y, reason);
    }
    return true;
  }

  edit(e: Edit): void {
    this.edits.push(e);
  }

  mac(m: MacNode): void {
    this.macNodes.push(m);
  }

  /** Gives `node`'s output `channels` fresh ids along `axis` of a rank-`rank` value. */
  addRoot(node: Node, kind: RootKind, channels: number, weightAxis: number, axis: number, rank: number): Root {
    const index = this.roots.length;
    const first = this.sets.add(channels, index);
    const root: Root = { node, kind, first, channels, weightAxis };
    this.roots.push(root);
    const refs = new Int32Array(channels);
    for (let i = 0; i < channels; i++) refs[i] = first + i;
    this.set(node.outputs[0], { refs, axis, rank, block: 1 });
    return root;
  }
}

function walk(a: Analyzer, g: Graph): void {
  for (const node of g.nodes) {
    const subgraphs = node.subgraphs();
    if (subgraphs.length > 0) {
      const reason = `read by ${node.describe()}, whose subgraphs the analysis does not follow`;
      a.refuse(node, reason);
      for (const sg of subgraphs) {
        for (const v of sg.capturedValues()) {
          const m = a.map(v);
          if (m) a.pinAll(m, reason);
        }
      }
      continue;
    }
    if (!isOnnxDomain(node.domain)) {
      a.refuse(node, `read by ${node.describe()}, an op outside the ONNX domain`);
      continue;
    }
    propagate(node, a);
  }
  for (const out of g.outputs) {
    const m = a.map(out);
    if (m) a.pinAll(m, `feeds the graph output "${out.name}" (output shapes never change)`);
  }
}

/** Analyses a model whose shapes have been inferred. Nodes must be in topological order. */
export function analyzeChannels(model: Model): ChannelAnalysis {
  const a = new Analyzer(model);
  walk(a, model.graph);
  return { model, roots: a.roots, sets: a.sets, maps: a.maps, edits: a.edits, macNodes: a.macNodes };
}
