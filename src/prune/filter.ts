/**
 * Filter (channel) pruning: analyse the channel dependencies, score the channels, choose the
 * classes to remove (a ratio of channels, or a fraction of the MACs) and cut them out of the
 * model. The model is changed in place into a smaller dense one; the report lists the kept
 * channels of every layer and each dependency group that was protected, with the reason.
 */
import { badInput } from '../errors.js';
import { nodeMacs } from '../eval/stats.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model, Node } from '../ir/graph.js';
import type { Dim, Shape } from '../ir/types.js';
import { inferShapes } from '../ops/infer.js';
import { analyzeChannels } from './analyze.js';
import { type Criterion, classScores } from './importance.js';
import { Planner, type Scope, select } from './plan.js';
import { applyRemoval, keptPositions } from './surgery.js';

/** A free input dim other than the batch counts as this many when MACs are weighed (224: an image side). */
export const MAC_FREE_DIM = 224;

export interface FilterPruneOptions {
  /** Channel score (default l1, the seed's Σ|w|). */
  criterion?: Criterion;
  /** Fraction of channels to remove, in (0, 1). */
  ratio?: number;
  /** Fraction of the multiply-accumulates to remove, in (0, 1). */
  flops?: number;
  /** layer: the same ratio in every dependency group; global: one ranking across groups (default global with flops, layer with ratio). */
  scope?: Scope;
  /** Kept channel counts move in steps of this many (default 1); 8 or 16 suit onnxruntime's CPU kernels. */
  multiple?: number;
  /** Input shapes to count MACs with; free dims default to 1 (batch) and MAC_FREE_DIM. */
  inputShapes?: Record<string, Shape>;
}

export interface PrunedLayer {
  name: string;
  op: string;
  channels: number;
  kept: number;
}

export interface DependencyGroup {
  layers: string[];
  /** Independent channel sets in the group (tied channels count once). */
  classes: number;
  removed: number;
  /** Channel sets the analysis protected, and the first reason met. */
  protectedClasses: number;
  reason?: string;
}

export interface FilterPruneReport {
  criterion: Criterion;
  scope: Scope;
  ratio?: number;
  flops?: number;
  macsBefore: number;
  macsAfter: number;
  /** The shapes MACs were counted with, when the model's own had free dims. */
  macShapes?: Record<string, Dim[]>;
  layers: PrunedLayer[];
  groups: DependencyGroup[];
}

export function checkFraction(flag: string, x: number | undefined): void {
  if (x === undefined) return;
  if (!Number.isFinite(x) || x <= 0 || x >= 1) throw badInput(`${flag} ${x}: expected a fraction strictly between 0 and 1`);
}

/** MACs per node (by output name) on a copy whose free input dims are made concrete. */
function macCounter(model: Model, given: Record<string, Shape> | undefined) {
  const copy = readOnnx(writeOnnx(model).model);
  const shapes: Record<string, Dim[]> = {};
  let free = false;
  for (const v of copy.graph.inputs) {
    if (v.initializer || v.type?.kind !== 'tensor' || !v.type.shape) continue;
    const dims = given?.[v.name] ?? v.type.shape;
    shapes[v.name] = dims.map((d, i) => {
      if (typeof d === 'number') return d;
      free = true;
      return i === 0 ? 1 : MAC_FREE_DIM;
    });
  }
  inferShapes(copy, { inputShapes: shapes });
  const byOutput = new Map<string, number>();
  let total = 0;
  for (const n of copy.graph.allNodes()) {
    const m = nodeMacs(n) ?? 0;
    total += m;
    const out = n.outputs[0];
    if (out) byOutput.set(out.name, m);
  }
  return { macsOf: (n: Node) => byOutput.get(n.outputs[0]?.name ?? '') ?? 0, total, shapes: free ? shapes : undefined };
}

/** Multiply-accumulates of a model whose free input dims count as 1 (batch) and MAC_FREE_DIM (or as `shapes` fix them). */
export function countMacs(model: Model, shapes?: Record<string, Shape>): number {
  return macCounter(model, shapes).total;
}

export function pruneFilters(model: Model, options: FilterPruneOptions): FilterPruneReport {
  checkFraction('--sparsity', options.ratio);
  checkFraction('--flops', options.flops);
  if ((options.ratio === undefined) === (options.flops === undefined))
    throw badInput('give either a channel ratio (--sparsity) or a MAC fraction (--flops)');
  const criterion = options.criterion ?? 'l1';
  const scope = options.scope ?? (options.flops !== undefined ? 'global' : 'layer');
  const cycle = model.graph.topoSort();
  if (cycle) throw badInput(`the graph has a cycle through ${cycle[0].describe()}`);
  inferShapes(model);
  const counter = macCounter(model, options.inputShapes);
  const analysis = analyzeChannels(model);
  const scores = classScores(analysis, criterion);
  const plan = select(() => new Planner(analysis, counter.macsOf, counter.total), scores, {
    scope,
    ratio: options.ratio,
    flops: options.flops,
    multiple: options.multiple,
  });

  const layers: PrunedLayer[] = analysis.roots.map((r) => {
    const m = analysis.maps.get(r.node.outputs[0] as NonNullable<(typeof r.node.outputs)[0]>);
    return {
      name: r.node.name || (r.node.outputs[0]?.name ?? '?'),
      op: r.kind,
      channels: r.channels,
      kept: m ? keptPositions(analysis, m, plan.removed).length : r.channels,
    };
  });
  const groups = new Map<number, DependencyGroup>();
  const seen = new Set<number>();
  analysis.roots.forEach((r, i) => {
    for (let c = 0; c < r.channels; c++) {
      const cls = analysis.sets.find(r.first + c);
      const g = plan.group(cls);
      let entry = groups.get(g);
      if (!entry) {
        entry = { layers: [], classes: 0, removed: 0, protectedClasses: 0 };
        groups.set(g, entry);
      }
      if (!entry.layers.includes(layers[i].name)) entry.layers.push(layers[i].name);
      if (seen.has(cls)) continue;
      seen.add(cls);
      entry.classes++;
      if (plan.removed.has(cls)) entry.removed++;
      const reason = plan.pinned.get(cls);
      if (reason !== undefined) {
        entry.protectedClasses++;
        entry.reason ??= reason;
      }
    }
  });
  applyRemoval(analysis, plan.removed);
  const after = macCounter(model, counter.shapes ?? options.inputShapes);
  return {
    criterion,
    scope,
    ratio: options.ratio,
    flops: options.flops,
    macsBefore: counter.total,
    macsAfter: after.total,
    macShapes: counter.shapes,
    layers,
    groups: [...groups.values()],
  };
}
