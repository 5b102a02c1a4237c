import type { Command } from 'commander';
import { loadModel, saveModel } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { formatBytes } from '../format.js';
import { print, printJson } from '../output.js';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('read a model and write it back as ONNX (everything it carries is kept)')
    .argument('<in>', 'input model')
    .requiredOption('-o, --output <file>', 'output .onnx file (never the input)')
    .option('--external-data', 'store weights in <output>.data next to the model (automatic above 2 GB)')
    .option('--json', 'print one JSON object')
    .action((input: string, opts: { output: string; externalData?: boolean; json?: boolean }) => {
      const model = loadModel(input);
      assertValid(model, input, { registry: defaultRegistry() });
      const saved = saveModel(model, opts.output, { externalData: opts.externalData ? true : 'auto', protect: [input] });
      const report = {
        input,
        output: saved.path,
        bytes: saved.bytes,
        externalData: saved.externalPath ?? null,
        externalBytes: saved.externalBytes ?? 0,
        nodes: model.graph.nodes.length,
      };
      if (opts.json) return printJson(report);
      const ext = saved.externalPath ? ` + ${saved.externalPath} (${formatBytes(saved.externalBytes ?? 0)})` : '';
      print(`wrote ${saved.path} (${formatBytes(saved.bytes)})${ext}`);
    });
}
