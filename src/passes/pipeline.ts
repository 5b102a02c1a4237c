/**
 * The optimizer: which passes run, in which order, and why that order.
 *
 * 1. constant-folding first: Constant nodes become initializers and shape chains fold, so every
 *    later pattern sees constants in one form and shapes as numbers.
 * 2. eliminate-identity, eliminate-noop, squeeze-unsqueeze: cheap removals that put producers
 *    next to their real consumers (a Conv followed by Identity then BatchNormalization is a
 *    Conv+BN pattern only once the Identity is gone).
 * 3. cse: after folding, equal constants and equal subexpressions over them can be merged.
 * 4. dead-code last in each round, to sweep what the others disconnected.
 * The driver repeats the rounds until nothing changes: a fold can expose a no-op, a removed
 * no-op can expose a fold.
 */
import type { Model } from '../ir/graph.js';
import { constantFolding } from './constant-folding.js';
import { cse } from './cse.js';
import { deadCode } from './dead-code.js';
import { type PassStat, runToFixedPoint } from './driver.js';
import { eliminateIdentity } from './eliminate-identity.js';
import { eliminateNoop } from './eliminate-noop.js';
import type { OptimizeOptions, Pass } from './pass.js';
import { squeezeUnsqueeze } from './squeeze-unsqueeze.js';

export const PIPELINE: readonly Pass[] = [constantFolding, eliminateIdentity, eliminateNoop, squeezeUnsqueeze, cse, deadCode];

export interface OptimizeReport {
  nodesBefore: number;
  nodesAfter: number;
  opsBefore: Record<string, number>;
  opsAfter: Record<string, number>;
  passes: PassStat[];
  rounds: number;
  ms: number;
}

function histogram(model: Model): Record<string, number> {
  const out = new Map<string, number>();
  for (const n of model.graph.allNodes()) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...out].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

const count = (m: Model): number => [...m.graph.allNodes()].length;

/** Optimizes a model in place and reports what changed. */
export function optimize(model: Model, options: OptimizeOptions = {}): OptimizeReport {
  const t0 = performance.now();
  const opsBefore = histogram(model);
  const nodesBefore = count(model);
  const { stats, rounds } = runToFixedPoint(model, PIPELINE, options);
  return {
    nodesBefore,
    nodesAfter: count(model),
    opsBefore,
    opsAfter: histogram(model),
    passes: stats,
    rounds,
    ms: performance.now() - t0,
  };
}
