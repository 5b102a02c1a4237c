/**
 * `optimize`: fix input shapes, run the pass pipeline, and check on onnxruntime that the result
 * computes what the original did. When it does not, the pipeline is replayed pass by pass to
 * name the pass that changed the outputs, and nothing is returned to write.
 */
import { checkFailed, firstLine } from '../errors.js';
import { type Agreement, compareModels } from '../eval/equivalence.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model } from '../ir/graph.js';
import type { Shape } from '../ir/types.js';
import { applyInputShapes } from '../ops/infer.js';
import type { OptimizeOptions } from '../passes/pass.js';
import { type OptimizeReport, optimize } from '../passes/pipeline.js';
import type { Backend } from '../runtime/backend.js';

/** Largest output difference, relative to the output's scale, that counts as "the same". */
export const EQUIVALENCE_TOLERANCE = 1e-4;

export interface OptimizeRecipeOptions extends OptimizeOptions {
  inputShapes?: Record<string, Shape>;
  /** Backend to check equivalence on; no check when absent. */
  verifyWith?: Backend;
  seed?: number;
}

export interface VerifyResult {
  checked: boolean;
  /** Why the check could not run (the runtime cannot load the original, say). */
  skipped?: string;
  agreement?: Agreement;
}

export interface OptimizeRecipeReport extends OptimizeReport {
  verify: VerifyResult;
}

export async function optimizeModel(model: Model, options: OptimizeRecipeOptions = {}): Promise<OptimizeRecipeReport> {
  if (options.inputShapes) applyInputShapes(model.graph, options.inputShapes);
  const original = options.verifyWith ? writeOnnx(model).model : undefined;
  const report = optimize(model, options);
  if (!options.verifyWith || !original) return { ...report, verify: { checked: false, skipped: 'not requested' } };
  const reference = readOnnx(original);
  let agreement: Agreement;
  try {
    agreement = await compareModels(reference, model, options.verifyWith, options.seed ?? 0);
  } catch (e) {
    // The runtime cannot run the original (an op it lacks): nothing to compare against.
    return { ...report, verify: { checked: false, skipped: firstLine(e) } };
  }
  if (agreement.worst > EQUIVALENCE_TOLERANCE) {
    const culprit = await findCulprit(original, options);
    throw checkFailed(
      `the optimized model's outputs differ from the original's (relative difference ${agreement.worst.toExponential(2)})${culprit ? `; pass "${culprit}" made the difference` : ''} — nothing was written`,
    );
  }
  return { ...report, verify: { checked: true, agreement } };
}

/** Replays the pipeline on a fresh copy, checking after each pass that rewrote something. */
async function findCulprit(original: Uint8Array, options: OptimizeRecipeOptions): Promise<string | undefined> {
  const snapshots: Array<[string, Uint8Array]> = [];
  const replay = readOnnx(original);
  optimize(replay, { ...options, afterPass: (pass, m) => snapshots.push([pass, writeOnnx(m).model]) });
  const reference = readOnnx(original);
  for (const [pass, bytes] of snapshots) {
    const agreement = await compareModels(reference, readOnnx(bytes), options.verifyWith as Backend, options.seed ?? 0);
    if (agreement.worst > EQUIVALENCE_TOLERANCE) return pass;
  }
  return undefined;
}
