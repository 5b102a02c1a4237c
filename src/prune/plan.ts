/**
 * Choosing which channel classes to remove. The Planner tracks, for a trial set of removals,
 * how many positions every channel-carrying value keeps (each must keep one) and the model's
 * multiply-accumulates (each layer's MACs scale with its kept output and input channels). The
 * selections on top: a ratio of each dependency group's classes ("layer" scope), a ratio of all
 * classes ranked together ("global"), or removing the lowest-scored classes until a target
 * fraction of the MACs is gone.
 */
import { badInput } from '../errors.js';
import type { Node } from '../ir/graph.js';
import type { ChannelAnalysis } from './analyze.js';
import type { ChannelMap } from './channels.js';

export type Scope = 'layer' | 'global';

interface MacEntry {
  base: number;
  out: number;
  in: number;
}

export class Planner {
  readonly removed = new Set<number>();
  /** Removable classes (not pinned, holding a layer's output channel), by group. */
  readonly groups = new Map<number, number[]>();
  readonly pinned: Map<number, string>;
  readonly totalMacs: number;
  private readonly keptPerMap: number[] = [];
  private readonly mapNames: string[] = [];
  /** class → [map index, positions] */
  private readonly classMaps = new Map<number, Array<[number, number]>>();
  /** class → [mac entry, out positions, in features] */
  private readonly classMacs = new Map<number, Array<[number, number, number]>>();
  private readonly macEntries: MacEntry[] = [];
  private currentMacs: number;
  private readonly groupOf = new Map<number, number>();

  constructor(
    readonly analysis: ChannelAnalysis,
    macsOf: (node: Node) => number,
    totalMacs: number,
  ) {
    const { sets, maps, roots } = analysis;
    this.pinned = sets.pinnedClasses();
    this.totalMacs = totalMacs;
    // Dependency groups: the layers whose channels share classes.
    const parent = roots.map((_, i) => i);
    const find = (i: number): number => {
      while (parent[i] !== i) i = parent[i] = parent[parent[i]];
      return i;
    };
    for (let id = 0; id < sets.size; id++) {
      const a = find(sets.owner[id]);
      const b = find(sets.owner[sets.find(id)]);
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
    for (let id = 0; id < sets.size; id++) {
      const cls = sets.find(id);
      if (this.groupOf.has(cls)) continue;
      const g = find(sets.owner[id]);
      this.groupOf.set(cls, g);
      if (this.pinned.has(cls)) continue;
      const list = this.groups.get(g) ?? [];
      list.push(cls);
      this.groups.set(g, list);
    }
    const seen = new Map<ChannelMap, number>();
    for (const [value, m] of maps) {
      if (seen.has(m)) continue;
      const index = this.keptPerMap.length;
      seen.set(m, index);
      this.keptPerMap.push(m.refs.length);
      this.mapNames.push(value.name);
      const counts = this.countClasses(m);
      for (const [cls, n] of counts) this.push(this.classMaps, cls, [index, n]);
    }
    let fixed = totalMacs;
    for (const mn of analysis.macNodes) {
      const macs = macsOf(mn.node);
      const outMap = mn.out ? maps.get(mn.out) : undefined;
      const inMap = mn.in ? maps.get(mn.in) : undefined;
      const out = outMap ? outMap.refs.length : 1;
      const inn = inMap ? inMap.refs.length * inMap.block : 1;
      const index = this.macEntries.length;
      this.macEntries.push({ base: macs / (out * inn), out, in: inn });
      fixed -= macs;
      if (outMap) for (const [cls, n] of this.countClasses(outMap)) this.push(this.classMacs, cls, [index, n, 0]);
      if (inMap) for (const [cls, n] of this.countClasses(inMap)) this.push(this.classMacs, cls, [index, 0, n * inMap.block]);
    }
    this.fixedMacs = fixed;
    this.currentMacs = totalMacs;
  }

  private readonly fixedMacs: number;

  private push<T>(m: Map<number, T[]>, key: number, v: T): void {
    const list = m.get(key);
    if (list) list.push(v);
    else m.set(key, [v]);
  }

  private countClasses(m: ChannelMap): Map<number, number> {
    const counts = new Map<number, number>();
    for (const id of m.refs) {
      if (id < 0) continue;
      const cls = this.analysis.sets.find(id);
      counts.set(cls, (counts.get(cls) ?? 0) + 1);
    }
    return counts;
  }

  group(cls: number): number {
    return this.groupOf.get(cls) ?? -1;
  }

  /** The value that would be left with no channel if `classes` were removed, if any. */
  wouldEmpty(classes: readonly number[]): string | undefined {
    const need = new Map<number, number>();
    for (const cls of classes) {
      for (const [i, n] of this.classMaps.get(cls) ?? []) {
        const total = (need.get(i) ?? 0) + n;
        need.set(i, total);
        if (this.keptPerMap[i] - total < 1) return this.mapNames[i];
      }
    }
    return undefined;
  }

  remove(cls: number): void {
    if (this.removed.has(cls)) return;
    this.removed.add(cls);
    for (const [i, n] of this.classMaps.get(cls) ?? []) this.keptPerMap[i] -= n;
    for (const [i, dOut, dIn] of this.classMacs.get(cls) ?? []) {
      const e = this.macEntries[i];
      e.out -= dOut;
      e.in -= dIn;
    }
    this.currentMacs = this.fixedMacs + this.macEntries.reduce((s, e) => s + e.base * e.out * e.in, 0);
  }

  get macs(): number {
    return this.currentMacs;
  }
}

export interface Selection {
  scope: Scope;
  /** Kept channel counts move in steps of this many (runtimes' kernels favour multiples of 8 or 16). */
  multiple?: number;
  /** Fraction of channels to remove, or of MACs. */
  ratio?: number;
  flops?: number;
}

const byScore = (scores: Map<number, number>) => (a: number, b: number) => (scores.get(a) ?? 0) - (scores.get(b) ?? 0) || a - b;

function layerName(p: Planner, cls: number): string {
  const root = p.analysis.roots[p.analysis.sets.owner[cls]];
  return root.node.describe();
}

/**
 * A group's classes, lowest score first, cut into the units removal proceeds by: with a
 * multiple m, a first unit of n mod m classes and then units of m, so what is kept stays a
 * multiple of m.
 */
function units(classes: readonly number[], scores: Map<number, number>, multiple: number): number[][] {
  const order = [...classes].sort(byScore(scores));
  const out: number[][] = [];
  let i = order.length % multiple;
  if (i > 0) out.push(order.slice(0, i));
  for (; i < order.length; i += multiple) out.push(order.slice(i, i + multiple));
  return out;
}

/**
 * Removes about round(ratio · n) of each group's n classes, lowest scores first, in whole units;
 * a unit that would leave some value with no channel ends that group's removal. Asking for all
 * n is bad input (strict) or a failed trial (the bisection).
 */
function perGroup(p: Planner, scores: Map<number, number>, ratio: number, multiple: number, strict: boolean): boolean {
  for (const classes of p.groups.values()) {
    const k = Math.round(ratio * classes.length);
    if (k >= classes.length) {
      if (!strict) return false;
      throw badInput(`ratio ${ratio} would remove all ${classes.length} channels of ${layerName(p, classes[0])}; use a lower ratio`);
    }
    let removed = 0;
    for (const unit of units(classes, scores, multiple)) {
      if (removed >= k || Math.abs(removed + unit.length - k) >= Math.abs(removed - k)) break;
      if (p.wouldEmpty(unit) !== undefined) break;
      for (const cls of unit) p.remove(cls);
      removed += unit.length;
    }
  }
  return true;
}

const unitScore = (scores: Map<number, number>, unit: number[]) => unit.reduce((s, c) => s + (scores.get(c) ?? 0), 0) / unit.length;

/** Every group's units, ranked together; a unit is only taken after the ones before it in its group. */
function globalUnits(p: Planner, scores: Map<number, number>, multiple: number): Array<{ unit: number[]; group: number; index: number }> {
  const all: Array<{ unit: number[]; group: number; index: number; score: number }> = [];
  for (const [group, classes] of p.groups) {
    units(classes, scores, multiple).forEach((unit, index) => {
      all.push({ unit, group, index, score: unitScore(scores, unit) });
    });
  }
  return all.sort((a, b) => a.score - b.score || a.index - b.index || a.group - b.group);
}

export function select(make: () => Planner, scores: Map<number, number>, sel: Selection): Planner {
  const multiple = sel.multiple ?? 1;
  if (!Number.isInteger(multiple) || multiple < 1) throw badInput(`channel multiple ${multiple}: expected a whole number ≥ 1`);
  const probe = make();
  if (probe.groups.size === 0) {
    const reasons = [...new Set(probe.pinned.values())].slice(0, 3).join('; ');
    throw badInput(
      probe.analysis.roots.length === 0
        ? 'the model has no prunable layer (Conv, ConvTranspose, Gemm or MatMul with constant weights)'
        : `no channel can be removed: every layer's channels are protected (${reasons})`,
    );
  }
  if (sel.ratio !== undefined && sel.scope === 'layer') {
    perGroup(probe, scores, sel.ratio, multiple, true);
    return probe;
  }
  const ranked = globalUnits(probe, scores, multiple);
  const next = new Map<number, number>();
  /** Takes units in rank order while `more()` holds; a unit that would empty a value is skipped with the rest of its group. */
  const take = (more: () => boolean): void => {
    for (const { unit, group, index } of ranked) {
      if (!more()) return;
      if ((next.get(group) ?? 0) !== index) continue;
      if (probe.wouldEmpty(unit) !== undefined) {
        next.set(group, -1);
        continue;
      }
      for (const cls of unit) probe.remove(cls);
      next.set(group, index + 1);
    }
  };
  if (sel.ratio !== undefined) {
    const total = [...probe.groups.values()].reduce((s, c) => s + c.length, 0);
    const k = Math.round(sel.ratio * total);
    take(() => probe.removed.size < k);
    if (probe.removed.size < k) {
      throw badInput(
        `only ${probe.removed.size} of the ${k} channels asked for can be removed while every layer keeps a channel; use a lower ratio`,
      );
    }
    return probe;
  }
  const target = (1 - (sel.flops ?? 0)) * probe.totalMacs;
  if (sel.scope === 'global') {
    take(() => probe.macs > target);
    if (probe.macs > target) throw unreachable(probe, sel.flops ?? 0);
    return probe;
  }
  // Layer scope: the smallest uniform ratio that removes enough MACs, by bisection.
  let lo = 0;
  let hi = 1;
  let best: Planner | undefined;
  for (let i = 0; i < 24; i++) {
    const mid = (lo + hi) / 2;
    const p = make();
    const ok = perGroup(p, scores, mid, multiple, false);
    if (ok && p.macs <= target) {
      best = p;
      hi = mid;
    } else lo = mid;
  }
  if (!best) {
    take(() => true);
    throw unreachable(probe, sel.flops ?? 0);
  }
  return best;
}

function unreachable(p: Planner, flops: number): Error {
  const reached = 1 - p.macs / p.totalMacs;
  return badInput(
    `cannot remove ${(flops * 100).toFixed(0)}% of the MACs: at most ${(reached * 100).toFixed(1)}% can go while every layer keeps a channel and protected channels stay; use a lower --flops`,
  );
}
