import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { detectFormat } from '../../formats/detect.js';
import { loadModel, readFileBytes } from '../../io/files.js';
import { inspectModel } from '../../pipeline/inspect.js';
import { formatBytes, formatCount, formatDims, table } from '../format.js';
import { bindUnnamedShape, parseInputShapes } from '../options.js';
import { print, printJson } from '../output.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show a model: format, opsets, inputs and outputs, node and op counts, parameters, size, MACs')
    .argument('<model>', 'model file (format found from its bytes)')
    .option('--input-shape <name:dims...>', 'fix input dims, e.g. input:1x3x224x224 (symbols count as 1 for MACs otherwise)')
    .option('--json', 'print one JSON object')
    .action((path: string, opts: { inputShape?: string[]; json?: boolean }) => {
      const format = detectFormat(readFileBytes(path, 'model file').subarray(0, 4096)) ?? 'unknown';
      const model = loadModel(path);
      const shapes = bindUnnamedShape(
        parseInputShapes(opts.inputShape),
        model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name),
      );
      const report = { file: path, fileBytes: statSync(path).size, ...inspectModel(model, { format, inputShapes: shapes }) };
      if (opts.json) return printJson(report);
      const opsets = Object.entries(report.opsets)
        .map(([d, v]) => `${d} ${v}`)
        .join(', ');
      const producer = [report.producer.name, report.producer.version].filter(Boolean).join(' ') || 'unknown';
      print(`${path}: ${report.format.toUpperCase()} (IR ${report.irVersion}, opset ${opsets}), from ${producer}`);
      print('inputs:');
      print(table(report.inputs.map((v) => [v.name, v.dtype ?? '?', formatDims(v.shape)])));
      print('outputs:');
      print(table(report.outputs.map((v) => [v.name, v.dtype ?? '?', formatDims(v.shape)])));
      const macs =
        report.macs === null
          ? 'unknown'
          : `${formatCount(report.macs)}${report.macsAssume.length > 0 ? ` (with ${report.macsAssume.join(', ')} = 1)` : ''}`;
      print(
        `nodes ${report.nodes}   params ${formatCount(report.params)}   weights ${formatBytes(report.weightBytes)}   file ${formatBytes(report.fileBytes)}   MACs ${macs}`,
      );
      print(
        `ops: ${Object.entries(report.ops)
          .map(([op, n]) => `${op} ${n}`)
          .join(', ')}`,
      );
      const unknown = Object.keys(report.inference.unknownOps);
      if (unknown.length > 0) print(`note: no shape rule for ${unknown.join(', ')}; shapes after them may be unknown`);
      for (const p of report.inference.problems.slice(0, 5)) print(`warning: ${p.node}: ${p.message}`);
    });
}
