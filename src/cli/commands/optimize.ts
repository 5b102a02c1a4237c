import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { loadModel, saveModel } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { PIPELINE } from '../../passes/pipeline.js';
import { optimizeModel } from '../../pipeline/optimize.js';
import { nodeBackend } from '../../runtime/node.js';
import { formatBytes } from '../format.js';
import { bindUnnamedShape, parseInputShapes } from '../options.js';
import { print, printJson } from '../output.js';

interface OptimizeFlags {
  output: string;
  level: string;
  inputShape?: string[];
  disable?: string[];
  verify: boolean;
  externalData?: boolean;
  json?: boolean;
}

export function registerOptimize(program: Command): void {
  program
    .command('optimize')
    .description('fold constants, remove no-ops, merge duplicates and fuse operators; checks on onnxruntime that outputs do not change')
    .argument('<in>', 'input model')
    .requiredOption('-o, --output <file>', 'output .onnx file (never the input)')
    .option('--level <level>', 'basic (standard ops any runtime runs) or all (also onnxruntime contrib fusions)', 'basic')
    .option('--input-shape <name:dims...>', 'fix input dims (e.g. input:1x3x224x224) so shape computations fold')
    .option('--disable <pass...>', `skip passes by name (${PIPELINE.map((p) => p.name).join(', ')})`)
    .option('--no-verify', 'skip the equivalence check on onnxruntime')
    .option('--external-data', 'store weights in <output>.data next to the model')
    .option('--json', 'print one JSON object')
    .action(async (input: string, opts: OptimizeFlags) => {
      if (opts.level !== 'basic' && opts.level !== 'all') throw badInput(`--level ${opts.level}: expected basic or all`);
      const unknown = (opts.disable ?? []).filter((d) => !PIPELINE.some((p) => p.name === d));
      if (unknown.length > 0)
        throw badInput(`--disable ${unknown.join(', ')}: no such pass; the passes are ${PIPELINE.map((p) => p.name).join(', ')}`);
      const model = loadModel(input);
      const registry = defaultRegistry();
      assertValid(model, input, { registry });
      const names = model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
      const report = await optimizeModel(model, {
        level: opts.level,
        inputShapes: bindUnnamedShape(parseInputShapes(opts.inputShape), names),
        disable: opts.disable,
        verifyWith: opts.verify ? nodeBackend() : undefined,
      });
      assertValid(model, 'optimized model', { registry });
      const saved = saveModel(model, opts.output, { externalData: opts.externalData ? true : 'auto', protect: [input] });
      if (opts.json) return printJson({ input, output: saved.path, bytes: saved.bytes, ...report });
      print(`${input}: ${report.nodesBefore} → ${report.nodesAfter} nodes in ${report.ms.toFixed(0)} ms (${report.rounds} rounds)`);
      for (const p of report.passes.filter((s) => s.rewrites > 0))
        print(`  ${p.name.padEnd(22)} ${String(p.rewrites).padStart(5)} rewrites  ${p.ms.toFixed(1)} ms`);
      const v = report.verify;
      if (v.checked && v.agreement)
        print(`verified on onnxruntime: outputs agree (largest relative difference ${v.agreement.worst.toExponential(2)})`);
      else if (opts.verify) print(`not verified: ${v.skipped}`);
      print(`wrote ${saved.path} (${formatBytes(saved.bytes)})`);
    });
}
