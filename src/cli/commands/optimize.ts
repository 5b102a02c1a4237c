import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { loadModel, saveModel } from '../../io/files.js';
import { MAX_TARGET_OPSET, MIN_TARGET_OPSET } from '../../ir/upgrade/index.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { FINAL_PASSES, PIPELINE } from '../../passes/pipeline.js';

const PASS_NAMES = [...PIPELINE, ...FINAL_PASSES].map((p) => p.name);

import { optimizeModel } from '../../pipeline/optimize.js';
import { nodeBackend } from '../../runtime/node.js';
import { formatBytes } from '../format.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';

interface OptimizeFlags {
  output: string;
  level: string;
  inputShape?: string[];
  disable?: string[];
  verify: boolean;
  externalData?: boolean;
  json?: boolean;
  layout: string;
  opset?: string;
}

export function registerOptimize(program: Command): void {
  program
    .command('optimize')
    .description('fold constants, remove no-ops, merge duplicates and fuse operators; checks on onnxruntime that outputs do not change')
    .argument('<in>', 'input model')
    .requiredOption('-o, --output <file>', 'output .onnx file (never the input)')
    .option('--level <level>', 'basic (standard ops any runtime runs) or all (also onnxruntime contrib fusions)', 'basic')
    .option('--input-shape <name:dims...>', 'fix input dims (e.g. input:1x3x224x224) so shape computations fold')
    .option('--disable <pass...>', `skip passes by name (${PASS_NAMES.join(', ')})`)
    .option(
      '--layout <layout>',
      'nchw (as the model has it) or nhwc: rank-4 inputs and outputs become NHWC, as phone runtimes take them',
      'nchw',
    )
    .option(
      '--opset <n>',
      `upgrade the default ONNX opset to n (${MIN_TARGET_OPSET}–${MAX_TARGET_OPSET}) first, so newer fused ops (HardSwish 14, LayerNormalization 17, Gelu 20) are available`,
    )
    .option('--no-verify', 'skip the equivalence check on onnxruntime')
    .option('--external-data', 'store weights in <output>.data next to the model')
    .option('--json', 'print one JSON object')
    .action(async (input: string, opts: OptimizeFlags) => {
      if (opts.level !== 'basic' && opts.level !== 'all') throw badInput(`--level ${opts.level}: expected basic or all`);
      if (opts.layout !== 'nchw' && opts.layout !== 'nhwc') throw badInput(`--layout ${opts.layout}: expected nchw or nhwc`);
      const unknown = (opts.disable ?? []).filter((d) => !PASS_NAMES.includes(d));
      if (unknown.length > 0) throw badInput(`--disable ${unknown.join(', ')}: no such pass; the passes are ${PASS_NAMES.join(', ')}`);
      const model = loadModel(input);
      const registry = defaultRegistry();
      assertValid(model, input, { registry });
      const names = model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
      const report = await optimizeModel(model, {
        opset: opts.opset === undefined ? undefined : parseInteger('--opset', opts.opset, 1),
        level: opts.level,
        inputShapes: bindUnnamedShape(parseInputShapes(opts.inputShape), names),
        disable: opts.disable,
        verifyWith: opts.verify ? nodeBackend() : undefined,
        layout: opts.layout,
      });
      assertValid(model, 'optimized model', { registry });
      const saved = saveModel(model, opts.output, { externalData: opts.externalData ? true : 'auto', protect: [input] });
      if (opts.json) return printJson({ input, output: saved.path, bytes: saved.bytes, ...report });
      print(`${input}: ${report.nodesBefore} → ${report.nodesAfter} nodes in ${report.ms.toFixed(0)} ms (${report.rounds} rounds)`);
      if (report.upgrade) print(`  opset ${report.upgrade.from} → ${report.upgrade.to}`);
      if (report.layout) {
        const { inputs, outputs } = report.layout;
        const names = [...inputs.map((n) => `input ${n}`), ...outputs.map((n) => `output ${n}`)];
        print(`  layout nhwc: ${names.length > 0 ? `${names.join(', ')} now NHWC` : 'no rank-4 inputs or outputs, nothing changed'}`);
      }
      for (const p of report.passes.filter((s) => s.rewrites > 0))
        print(`  ${p.name.padEnd(22)} ${String(p.rewrites).padStart(5)} rewrites  ${p.ms.toFixed(1)} ms`);
      const v = report.verify;
      if (v.checked && v.agreement)
        print(
          `verified on onnxruntime: outputs agree (largest relative difference ${v.agreement.worst.toExponential(2)})${v.note ? `; ${v.note}` : ''}`,
        );
      else if (opts.verify) print(`not verified: ${v.skipped}`);
      print(`wrote ${saved.path} (${formatBytes(saved.bytes)})`);
    });
}
