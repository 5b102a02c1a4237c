/** `run`: one inference on a backend, with checked or random inputs. */
import { summarize, type TensorSummary } from '../eval/summary.js';
import type { Model } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { applyInputShapes } from '../ops/infer.js';
import type { Backend, Feeds, OptimizationLevel } from '../runtime/backend.js';
import { checkFeeds, randomFeeds } from '../runtime/feeds.js';

export interface RunOptions {
  backend: Backend;
  /** Tensors by input name; inputs not given are made at random when `random` is set. */
  feeds?: Feeds;
  random?: boolean;
  seed?: number;
  inputShapes?: Record<string, Shape>;
  threads?: number;
  optimization?: OptimizationLevel;
}

export interface RunResult {
  outputs: Record<string, Tensor>;
  summaries: TensorSummary[];
  /** Wall time of the inference itself (session creation excluded). */
  ms: number;
  backend: string;
}

export async function runModel(model: Model, options: RunOptions): Promise<RunResult> {
  assertValid(model, 'model', { registry: defaultRegistry() });
  if (options.inputShapes) applyInputShapes(model.graph, options.inputShapes);
  const feeds: Feeds = { ...(options.random ? randomFeeds(model, options.seed ?? 0) : {}), ...(options.feeds ?? {}) };
  checkFeeds(model, feeds);
  const session = await options.backend.createSession(model, { threads: options.threads, optimization: options.optimization });
  try {
    const t0 = performance.now();
    const outputs = await session.run(feeds);
    const ms = performance.now() - t0;
    const summaries = session.outputNames.map((name) => summarize(name, outputs[name]));
    return { outputs, summaries, ms, backend: options.backend.name };
  } finally {
    await session.release();
  }
}
