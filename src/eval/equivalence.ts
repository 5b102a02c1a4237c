/**
 * Do two models compute the same thing? Both run on the same seeded random inputs; each output's
 * largest difference is measured relative to that output's scale (its largest magnitude), so
 * a logit layer and a probability layer are judged alike.
 */
import type { Model } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Backend, Feeds } from '../runtime/backend.js';
import { randomFeeds } from '../runtime/feeds.js';

export interface OutputAgreement {
  name: string;
  maxAbsDiff: number;
  /** Largest magnitude of the reference output. */
  scale: number;
  /** maxAbsDiff / scale (maxAbsDiff itself when the scale is 0). */
  relDiff: number;
}

export interface Agreement {
  outputs: OutputAgreement[];
  /** The worst relative difference over all outputs. */
  worst: number;
  /** The worst absolute difference over all outputs. */
  worstAbs: number;
}

/**
 * Whether every output agrees within `rel` of its scale. An output whose values are all close
 * to zero (a sigmoid map on noise input, say) has a scale far below the rounding noise of the
 * float32 sums that produced it, so absolute differences up to `abs` always pass.
 */
export function agrees(a: Agreement, rel = 1e-4, abs = 1e-6): boolean {
  return a.outputs.every((o) => o.maxAbsDiff <= Math.max(rel * o.scale, abs));
}

export function compareOutputs(reference: Record<string, Tensor>, candidate: Record<string, Tensor>): Agreement {
  const outputs: OutputAgreement[] = [];
  for (const [name, ref] of Object.entries(reference)) {
    const got = candidate[name];
    if (!got || got.dims.join(',') !== ref.dims.join(',') || got.dtype !== ref.dtype) {
      outputs.push({ name, maxAbsDiff: Number.POSITIVE_INFINITY, scale: 0, relDiff: Number.POSITIVE_INFINITY });
      continue;
    }
    if (ref.dtype === 'string') {
      const same = ref.strings.every((s, i) => s === got.strings[i]);
      outputs.push({ name, maxAbsDiff: same ? 0 : 1, scale: 1, relDiff: same ? 0 : 1 });
      continue;
    }
    const a = ref.toNumbers();
    const b = got.toNumbers();
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (Number.isFinite(x)) scale = Math.max(scale, Math.abs(x));
      const d = x === y ? 0 : Math.abs(x - y);
      diff = Math.max(diff, Number.isNaN(d) ? Number.POSITIVE_INFINITY : d);
    }
    outputs.push({ name, maxAbsDiff: diff, scale, relDiff: scale > 0 ? diff / scale : diff });
  }
  return { outputs, worst: Math.max(0, ...outputs.map((o) => o.relDiff)), worstAbs: Math.max(0, ...outputs.map((o) => o.maxAbsDiff)) };
}

/** Runs both models on the same random inputs (runtime optimisations off) and compares. */
export async function compareModels(reference: Model, candidate: Model, backend: Backend, seed = 0): Promise<Agreement> {
  const feeds: Feeds = randomFeeds(reference, seed);
  const run = async (m: Model): Promise<Record<string, Tensor>> => {
    const s = await backend.createSession(m, { optimization: 'disabled' });
    try {
      return await s.run(feeds);
    } finally {
      await s.release();
    }
  };
  return compareOutputs(await run(reference), await run(candidate));
}
