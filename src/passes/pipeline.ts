/**
 * The optimizer: which passes run, in which order, and why that order.
 *
 * Each round runs, in order:
 * 1. constant-folding: Constant nodes become initializers and shape chains fold, so every later
 *    pattern sees constants in one form and shapes as numbers.
 * 2. eliminate-identity, eliminate-noop, squeeze-unsqueeze: cheap removals that put producers
 *    next to their real consumers (Conv → Identity → BatchNormalization is a Conv+BN pattern
 *    only once the Identity is gone).
 * 3. cse: after folding, equal constants and equal subexpressions over them merge.
 * 4. fuse-pad, fuse-conv-bn, fuse-conv-mul-add, fuse-matmul-add, fuse-gemm-bn,
 *    normalize-gemm-input: they need the folded constants and Identity-free chains of 1–3, and
 *    folding BatchNormalization, Mul and Add into the Conv or Gemm puts its activation right
 *    after it for 5 and for the final lowering. Pad goes first (it only changes the conv's input);
 *    MatMul + Add becomes Gemm before a BatchNormalization folds into that Gemm and before its
 *    input is put in Flatten form, so each chain settles in one round.
 * 5. fuse-relu-clip, fuse-hardswish, fuse-gelu, fuse-layernorm: their patterns span several
 *    nodes that Identity/no-op nodes or unfolded Constants would interrupt. Relu/Clip merge
 *    first so a Relu6 written as Relu + Clip is the one Clip(0, 6) HardSwish looks for.
 * 6. merge-transposes, merge-reshapes, transpose-sinking: after the fusions, which see each
 *    pattern in the layout the exporter wrote (a LayerNorm over the last axis stays one even when
 *    Transposes surround it); what they expose (one Reshape where there were three, a Transpose
 *    cancelled) is there for the fusions of the next round. Merging pairs first leaves sinking
 *    fewer Transposes to move.
 * 7. dead-code, to sweep what the others disconnected.
 * The driver repeats the rounds until nothing changes: a fold can expose a no-op, a removed no-op
 * can expose a fold.
 *
 * Then, once, at level 'all': lower-fused-activation turns Conv/Gemm + activation into
 * onnxruntime's com.microsoft FusedConv/FusedGemm. It runs after the fixed point because no
 * other pass knows those contrib ops: every standard rewrite must have had its chance first.
 */
import type { Model } from '../ir/graph.js';
import { constantFolding } from './constant-folding.js';
import { cse } from './cse.js';
import { deadCode } from './dead-code.js';
import { type PassStat, runToFixedPoint } from './driver.js';
import { eliminateIdentity } from './eliminate-identity.js';
import { eliminateNoop } from './eliminate-noop.js';
import { lowerFusedActivation } from './fuse-activation.js';
import { fuseConvBn } from './fuse-conv-bn.js';
import { fuseConvMulAdd } from './fuse-conv-mul-add.js';
import { fuseGelu } from './fuse-gelu.js';
import { fuseGemmBn } from './fuse-gemm-bn.js';
import { fuseHardswish } from './fuse-hardswish.js';
import { fuseLayernorm } from './fuse-layernorm.js';
import { fuseMatmulAdd } from './fuse-matmul-add.js';
import { fusePad } from './fuse-pad.js';
import { fuseReluClip } from './fuse-relu-clip.js';
import { mergeReshapes } from './merge-reshapes.js';
import { mergeTransposes } from './merge-transposes.js';
import { normalizeGemmInput } from './normalize-gemm-input.js';
import type { OptimizeOptions, Pass } from './pass.js';
import { squeezeUnsqueeze } from './squeeze-unsqueeze.js';
import { transposeSinking } from './transpose-sinking.js';

export const PIPELINE: readonly Pass[] = [
  constantFolding,
  eliminateIdentity,
  eliminateNoop,
  squeezeUnsqueeze,
  cse,
  // Folds into Conv and Gemm (item 4).
  fusePad,
  fuseConvBn,
  fuseConvMulAdd,
  fuseMatmulAdd,
  fuseGemmBn,
  normalizeGemmInput,
  // Pattern fusions into standard ops (item 5).
  fuseReluClip,
  fuseHardswish,
  fuseGelu,
  fuseLayernorm,
  // Layout: merge Transpose and reshape chains, then sink Transposes (item 6).
  mergeTransposes,
  mergeReshapes,
  transposeSinking,
  deadCode,
];

/** Passes run once after the rounds reach their fixed point. */
export const FINAL_PASSES: readonly Pass[] = [lowerFusedActivation];

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
  const { stats, rounds } = runToFixedPoint(model, options.passes ?? PIPELINE, options, options.passes ? [] : FINAL_PASSES);
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
