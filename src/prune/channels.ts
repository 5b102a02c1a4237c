/**
 * The bookkeeping of channel dependency analysis. Every output channel of a prunable layer (a
 * "root": Conv, ConvTranspose, Gemm, MatMul with constant weights) gets a global id. Each value
 * that carries such channels is described by a ChannelMap: for each position along its channel
 * axis, the id of the channel found there (or -1 for a channel of other origin that can never be
 * removed). Ops that tie channels together (a residual Add, a Mul, a Concat along another axis)
 * union their ids, so removal works on equivalence classes: a class is removed everywhere at once
 * and every value keeps the positions whose class is kept. Channels the analysis cannot follow
 * are pinned, with a reason, and never removed.
 */
import { isOnnxDomain, type Node, type Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { constantOf } from '../ops/constants.js';

/** The channels of one value along its channel axis. */
export interface ChannelMap {
  /** Global channel id at each position; -1 for a channel that cannot be removed. */
  refs: Int32Array;
  /** The channel axis (non-negative) in a value of rank `rank`. */
  axis: number;
  rank: number;
  /** Consecutive elements per channel along the axis (1; H·W after Flatten). */
  block: number;
}

export type RootKind = 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul';

/** A layer whose output channels can be removed. */
export interface Root {
  node: Node;
  kind: RootKind;
  /** Its output channels: ids first … first + channels − 1. */
  first: number;
  channels: number;
  /** The axis of the weights holding one output channel per index. */
  weightAxis: number;
}

/**
 * A change to make once the removed classes are known: keep, along `axis` of the constant input
 * `input` of `node`, the positions of `by` that are kept (expanded by its block).
 */
export type Edit =
  | { kind: 'slice'; node: Node; input: number; axis: number; by: Value }
  | { kind: 'group'; node: Node; by: Value }
  /** The Split's sizes become the kept positions of `by` within each original part. */
  | { kind: 'split'; node: Node; by: Value; sizes: number[] }
  /** Entry `dim` of the Reshape's constant shape becomes (kept positions of `by`) × factor. */
  | { kind: 'reshape'; node: Node; by: Value; dim: number; factor: number };

/** A node whose multiply-accumulates scale with the kept channels of its output and/or input. */
export interface MacNode {
  node: Node;
  /** Output channels follow this value's map (or are fixed when absent). */
  out?: Value;
  /** Input channels (features, block-expanded) follow this value's map. */
  in?: Value;
}

/** Union-find over channel ids with pins. */
export class ChannelSets {
  private readonly parent: number[] = [];
  /** Channel id → the root it belongs to. */
  readonly owner: number[] = [];
  private readonly pins = new Map<number, string>();

  add(count: number, root: number): number {
    const first = this.parent.length;
    for (let i = 0; i < count; i++) {
      this.parent.push(first + i);
      this.owner.push(root);
    }
    return first;
  }

  get size(): number {
    return this.parent.length;
  }

  find(id: number): number {
    let r = id;
    while (this.parent[r] !== r) r = this.parent[r];
    let i = id;
    while (this.parent[i] !== r) {
      const next = this.parent[i];
      this.parent[i] = r;
      i = next;
    }
    return r;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }

  pin(id: number, reason: string): void {
    if (id >= 0 && !this.pins.has(id)) this.pins.set(id, reason);
  }

  /** Pin reasons by class representative (the first reason met for each class). */
  pinnedClasses(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [id, reason] of this.pins) {
      const c = this.find(id);
      if (!out.has(c)) out.set(c, reason);
    }
    return out;
  }
}

/** The constant value of `v`, looking through Identity nodes (exporters share a weight that way). */
export function constantInput(v: Value | null | undefined): Tensor | undefined {
  let cur = v;
  for (let hops = 0; cur && hops < 16; hops++) {
    const t = constantOf(cur);
    if (t) return t;
    const p = cur.producer;
    if (p?.opType !== 'Identity' || !isOnnxDomain(p.domain)) return undefined;
    cur = p.input(0);
  }
  return undefined;
}
