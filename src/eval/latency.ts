/**
 * Inference latency on a backend: warm-up runs, then timed runs; median and 90th percentile.
 * Several models are timed in alternation (model A, model B, model A, …) so they share the
 * machine's state — a noisy neighbour or a clock change hits both — and with spinning off, so a
 * thread pool left spinning after one model's run does not steal the next one's cores.
 */
import type { Model } from '../ir/graph.js';
import type { Backend, Feeds, Session } from '../runtime/backend.js';
import { randomFeeds } from '../runtime/feeds.js';

export interface LatencyOptions {
  threads?: number;
  /** Timed runs per model (default 50). */
  runs?: number;
  /** Untimed runs first (default 5). */
  warmup?: number;
  /** Idle threads spin between runs; default: on for one model, off when comparing several. */
  spinning?: boolean;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface LatencyResult {
  name: string;
  runs: number;
  warmup: number;
  medianMs: number;
  p90Ms: number;
  meanMs: number;
  minMs: number;
}

/** The q-quantile of sorted numbers (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export async function measureLatency(
  models: ReadonlyArray<{ name: string; model: Model; feeds?: Feeds }>,
  backend: Backend,
  options: LatencyOptions = {},
): Promise<LatencyResult[]> {
  const runs = options.runs ?? 50;
  const warmup = options.warmup ?? 5;
  const spinning = options.spinning ?? models.length === 1;
  const sessions: Session[] = [];
  try {
    for (const m of models) sessions.push(await backend.createSession(m.model, { threads: options.threads, spinning }));
    const feeds = models.map((m) => m.feeds ?? randomFeeds(m.model, options.seed ?? 0));
    const times: number[][] = models.map(() => []);
    const total = (runs + warmup) * models.length;
    let done = 0;
    for (let r = 0; r < runs + warmup; r++) {
      for (let i = 0; i < sessions.length; i++) {
        const t0 = performance.now();
        await sessions[i].run(feeds[i]);
        const ms = performance.now() - t0;
        if (r >= warmup) times[i].push(ms);
        options.onProgress?.(++done, total);
      }
    }
    return models.map((m, i) => {
      const sorted = [...times[i]].sort((a, b) => a - b);
      return {
        name: m.name,
        runs,
        warmup,
        medianMs: quantile(sorted, 0.5),
        p90Ms: quantile(sorted, 0.9),
        meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
        minMs: sorted[0] ?? Number.NaN,
      };
    });
  } finally {
    for (const s of sessions) await s.release();
  }
}
