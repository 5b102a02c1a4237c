/**
 * `optimize`: fix input shapes, run the pass pipeline, and check on onnxruntime that the result
 * computes what the original did. When it does not, the pipeline is replayed pass by pass to
 * name the pass that changed the outputs, and nothing is returned to write.
 * With `layout: 'nhwc'` the model first gets NHWC rank-4 inputs and outputs (Transposes at its
 * boundary, which the pipeline's transpose-sinking then moves inward); the check compares against
 * that boundary-only model, which takes the same NHWC inputs and computes exactly the original.
 */
import { checkFailed, firstLine } from '../errors.js';
import { type Agreement, agrees, compareModels } from '../eval/equivalence.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { Model } from '../ir/graph.js';
import type { Shape } from '../ir/types.js';
import { type UpgradeReport, upgradeOpset } from '../ir/upgrade/index.js';
import { applyInputShapes } from '../ops/infer.js';
import { type NhwcBoundaries, nhwcBoundaries } from '../passes/layout-nhwc.js';
import type { OptimizeOptions } from '../passes/pass.js';
import { type OptimizeReport, optimize } from '../passes/pipeline.js';
import type { Backend } from '../runtime/backend.js';

/** Largest output difference, relative to the output's scale, that counts as "the same" (see `agrees`). */
export const EQUIVALENCE_TOLERANCE = 1e-4;

export interface OptimizeRecipeOptions extends OptimizeOptions {
  inputShapes?: Record<string, Shape>;
  /** Backend to check equivalence on; no check when absent. */
  verifyWith?: Backend;
  seed?: number;
  /** Upgrade the default ONNX opset to this version first (`--opset`), so newer fused ops are available. */
  opset?: number;
  /** nhwc: rank-4 inputs and outputs become NHWC (`--layout nhwc`); nchw (default): as the model has them. */
  layout?: 'nchw' | 'nhwc';
}

export interface VerifyResult {
  checked: boolean;
  /** How the check was made when not against the original as given. */
  note?: string;
  /** Why the check could not run (the runtime cannot load the original, say). */
  skipped?: string;
  agreement?: Agreement;
}

export interface OptimizeRecipeReport extends OptimizeReport {
  verify: VerifyResult;
  /** With layout nhwc: the inputs and outputs now NHWC. */
  layout?: NhwcBoundaries;
  /** With an opset upgrade: what the converter rewrote. */
  upgrade?: UpgradeReport;
}

/** Counts before the boundary Transposes that layout nhwc added, so "before" is the model as given. */
function withoutBoundaries(report: OptimizeReport, layout: NhwcBoundaries | undefined): OptimizeReport {
  const added = layout ? layout.inputs.length + layout.outputs.length : 0;
  if (added === 0) return report;
  const opsBefore = { ...report.opsBefore, Transpose: (report.opsBefore.Transpose ?? 0) - added };
  if (opsBefore.Transpose <= 0) delete (opsBefore as Partial<typeof opsBefore>).Transpose;
  return { ...report, nodesBefore: report.nodesBefore - added, opsBefore };
}

export async function optimizeModel(model: Model, options: OptimizeRecipeOptions = {}): Promise<OptimizeRecipeReport> {
  if (options.inputShapes) applyInputShapes(model.graph, options.inputShapes);
  const layout = options.layout === 'nhwc' ? nhwcBoundaries(model) : undefined;
  const original = options.verifyWith ? writeOnnx(model).model : undefined;
  const upgrade = options.opset !== undefined ? upgradeOpset(model, options.opset) : undefined;
  const upgraded = upgrade && options.verifyWith ? writeOnnx(model).model : undefined;
  const report = { ...withoutBoundaries(optimize(model, options), layout), layout, ...(upgrade ? { upgrade } : {}) };
  if (!options.verifyWith || !original) return { ...report, verify: { checked: false, skipped: 'not requested' } };
  let agreement: Agreement;
  let note: string | undefined;
  try {
    agreement = await compareModels(readOnnx(original), model, options.verifyWith, options.seed ?? 0);
  } catch (e) {
    // The runtime cannot run the original (an op it lacks, an opset it dropped): compare with
    // the upgraded model when there is one, else there is nothing to compare against.
    if (!upgraded) return { ...report, verify: { checked: false, skipped: firstLine(e) } };
    try {
      agreement = await compareModels(readOnnx(upgraded), model, options.verifyWith, options.seed ?? 0);
      note = `compared with the upgraded model: ${firstLine(e)}`;
    } catch (e2) {
      return { ...report, verify: { checked: false, skipped: firstLine(e2) } };
    }
  }
  if (!agrees(agreement, EQUIVALENCE_TOLERANCE)) {
    const culprit = await findCulprit(original, options);
    throw checkFailed(
      `the optimized model's outputs differ from the original's (relative difference ${agreement.worst.toExponential(2)})${culprit ? `; pass "${culprit}" made the difference` : ''} — nothing was written`,
    );
  }
  return { ...report, verify: { checked: true, agreement, ...(note ? { note } : {}) } };
}

/** Replays the pipeline on a fresh copy, checking after each pass that rewrote something. */
async function findCulprit(original: Uint8Array, options: OptimizeRecipeOptions): Promise<string | undefined> {
  const snapshots: Array<[string, Uint8Array]> = [];
  const replay = readOnnx(original);
  if (options.opset !== undefined) {
    upgradeOpset(replay, options.opset);
    snapshots.push(['upgrade-opset', writeOnnx(replay).model]);
  }
  optimize(replay, { ...options, afterPass: (pass, m) => snapshots.push([pass, writeOnnx(m).model]) });
  const reference = readOnnx(original);
  for (const [pass, bytes] of snapshots) {
    const agreement = await compareModels(reference, readOnnx(bytes), options.verifyWith as Backend, options.seed ?? 0);
    if (!agrees(agreement, EQUIVALENCE_TOLERANCE)) return pass;
  }
  return undefined;
}
