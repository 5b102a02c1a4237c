/**
 * Automatic fallback to float: quantize everything, measure; while the loss exceeds the limit
 * (top-1 points on labelled data, or an SQNR floor on the output), put the most sensitive layers
 * back in float — in the order of the sensitivity ranking — and measure again. The number of
 * layers kept float is searched by doubling (1, 2, 4, …) until the limit is met and then by
 * bisection between the last count that failed and the first that passed, so a model with
 * n layers costs about 2·log2(n) measurements instead of up to n; the answer is the smallest
 * count found that meets the limit (it is the linear search's answer when adding layers never
 * hurts, which is the usual case and not a guarantee).
 */
import type { Model } from '../ir/graph.js';
import { dropPoints, type Score, type Scorer } from './scoring.js';
import type { LayerSensitivity } from './sensitivity.js';
import type { Variants } from './variants.js';

export interface FallbackTarget {
  /** Largest top-1 drop allowed, in points (labelled data). */
  maxDrop?: number;
  /** Smallest output SQNR allowed, in dB. */
  minSqnr?: number;
}

export interface FallbackStep {
  /** Layers kept float at this step. */
  float: number;
  score: Score;
  /** Top-1 points lost (labelled data). */
  drop?: number;
  met: boolean;
}

export interface FallbackReport {
  target: FallbackTarget;
  /** Layers kept float, most sensitive first. */
  float: string[];
  met: boolean;
  /** Score of the whole model quantized, and of the result. */
  initial: Score;
  final: Score;
  initialDrop?: number;
  finalDrop?: number;
  /** Every measurement, in the order made. */
  steps: FallbackStep[];
  ms: number;
}

export function meets(target: FallbackTarget, float: Score, s: Score): boolean {
  if (target.maxDrop !== undefined && dropPoints(float, s) > target.maxDrop) return false;
  if (target.minSqnr !== undefined && !(s.sqnrDb >= target.minSqnr)) return false;
  return true;
}

/**
 * Finds the fewest top-ranked layers to keep float so that the target is met. Returns the model
 * built for the answer too (so the caller need not rebuild it).
 */
export async function fallbackToFloat(
  variants: Variants,
  scorer: Scorer,
  ranking: readonly LayerSensitivity[],
  target: FallbackTarget,
  options: { onStep?: (step: FallbackStep) => void } = {},
): Promise<FallbackReport & { model: Model }> {
  const t0 = performance.now();
  const order = ranking.map((l) => l.layer);
  const steps: FallbackStep[] = [];
  const cache = new Map<number, { step: FallbackStep; model: Model }>();
  const measure = async (k: number): Promise<{ step: FallbackStep; model: Model }> => {
    const hit = cache.get(k);
    if (hit) return hit;
    const { model } = await variants.build({ float: order.slice(0, k) });
    const score = await scorer.score(model);
    const step: FallbackStep = {
      float: k,
      score,
      ...(scorer.labelled ? { drop: dropPoints(scorer.float, score) } : {}),
      met: meets(target, scorer.float, score),
    };
    steps.push(step);
    options.onStep?.(step);
    const r = { step, model };
    cache.set(k, r);
    return r;
  };
  const first = await measure(0);
  let best = first;
  if (!first.step.met && order.length > 0) {
    // Doubling: find a count that passes.
    let lo = 0;
    let hi = -1;
    for (let k = 1; ; k = Math.min(order.length, k * 2)) {
      const r = await measure(k);
      if (r.step.met) {
        hi = k;
        break;
      }
      lo = k;
      if (k === order.length) break;
    }
    if (hi < 0) {
      // Not met even with every layer float: keep the best measured.
      best = [...cache.values()].reduce((a, b) => (better(b.step.score, a.step.score, scorer) ? b : a));
    } else {
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        const r = await measure(mid);
        if (r.step.met) hi = mid;
        else lo = mid;
      }
      best = await measure(hi);
    }
  }
  const k = best.step.float;
  return {
    target,
    float: order.slice(0, k),
    met: best.step.met,
    initial: first.step.score,
    final: best.step.score,
    ...(scorer.labelled
      ? { initialDrop: dropPoints(scorer.float, first.step.score), finalDrop: dropPoints(scorer.float, best.step.score) }
      : {}),
    steps,
    ms: performance.now() - t0,
    model: best.model,
  };
}

function better(a: Score, b: Score, scorer: Scorer): boolean {
  if (scorer.labelled && a.accuracy !== undefined && b.accuracy !== undefined && a.accuracy !== b.accuracy) return a.accuracy > b.accuracy;
  return a.nsr < b.nsr;
}
