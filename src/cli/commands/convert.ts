import type { Command } from 'commander';
import { loadModel, saveModel } from '../../io/files.js';
import { MAX_TARGET_OPSET, MIN_TARGET_OPSET, type UpgradeReport, upgradeOpset } from '../../ir/upgrade/index.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { formatBytes } from '../format.js';
import { parseInteger } from '../options.js';
import { print, printJson } from '../output.js';

interface ConvertFlags {
  output: string;
  externalData?: boolean;
  json?: boolean;
  opset?: string;
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('read a model and write it back as ONNX (everything it carries is kept)')
    .argument('<in>', 'input model')
    .requiredOption('-o, --output <file>', 'output .onnx file (never the input)')
    .option('--opset <n>', `upgrade the default ONNX operator set to version n (${MIN_TARGET_OPSET} to ${MAX_TARGET_OPSET}) before writing`)
    .option('--external-data', 'store weights in <output>.data next to the model (automatic above 2 GB)')
    .option('--json', 'print one JSON object')
    .action((input: string, opts: ConvertFlags) => {
      const target = opts.opset === undefined ? undefined : parseInteger('--opset', opts.opset, 1);
      const model = loadModel(input);
      const registry = defaultRegistry();
      assertValid(model, input, { registry });
      let upgrade: UpgradeReport | undefined;
      if (target !== undefined) {
        upgrade = upgradeOpset(model, target);
        assertValid(model, 'upgraded model', { registry });
      }
      const saved = saveModel(model, opts.output, { externalData: opts.externalData ? true : 'auto', protect: [input] });
      const report = {
        input,
        output: saved.path,
        bytes: saved.bytes,
        externalData: saved.externalPath ?? null,
        externalBytes: saved.externalBytes ?? 0,
        nodes: model.graph.nodes.length,
        ...(upgrade ? { upgrade } : {}),
      };
      if (opts.json) return printJson(report);
      if (upgrade) {
        const rewrites = Object.entries(upgrade.adapted).map(([k, n]) => `${k}×${n}`);
        const detail = rewrites.length > 0 ? `: ${rewrites.join(', ')}` : ', no node needed rewriting';
        print(`opset ${upgrade.from} → ${upgrade.to}${upgrade.from === upgrade.to ? ' (already there)' : detail}`);
      }
      const ext = saved.externalPath ? ` + ${saved.externalPath} (${formatBytes(saved.externalBytes ?? 0)})` : '';
      print(`wrote ${saved.path} (${formatBytes(saved.bytes)})${ext}`);
    });
}
