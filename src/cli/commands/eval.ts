import type { Command } from 'commander';
import { openDataset } from '../../data/spec.js';
import { badInput } from '../../errors.js';
import { evaluate } from '../../eval/accuracy.js';
import { loadModel } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { applyInputShapes } from '../../ops/infer.js';
import { nodeBackend } from '../../runtime/node.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { progressBar } from '../progress.js';

interface EvalFlags extends DataFlags {
  data: string;
  limit?: string;
  batch: string;
  output?: string;
  inputShape?: string[];
  threads?: string;
  json?: boolean;
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description('classification accuracy (top-1, top-5) of a model on a labelled dataset, on onnxruntime')
    .argument('<model>', 'model file')
    .requiredOption(
      '--data <spec>',
      'fashion-mnist[:train|:test] (default split: test), an .npz with inputs and labels, or an image folder with one sub-folder per class',
    )
    .option('--limit <n>', 'evaluate only the first n samples')
    .option('--batch <n>', 'batch size', '256')
    .option('--output <name>', 'the output holding the scores (default: the first)')
    .option('--input-shape <name:dims...>', 'fix input dims (needed to size images for a model with a free image size)')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--json', 'print one JSON object');
  addDataOptions(cmd);
  cmd.action(async (path: string, opts: EvalFlags) => {
    const model = loadModel(path);
    assertValid(model, path, { registry: defaultRegistry() });
    const inputs = model.graph.inputs.filter((v) => !v.initializer);
    if (inputs.length !== 1)
      throw badInput(`eval feeds one input; the model has ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`);
    const shapes = bindUnnamedShape(parseInputShapes(opts.inputShape), [inputs[0].name]);
    if (shapes) applyInputShapes(model.graph, shapes);
    const data = openDataset(opts.data, { defaultSplit: 'test', input: inputs[0], ...preprocessFrom(opts) });
    const limit = opts.limit === undefined ? undefined : parseInteger('--limit', opts.limit, 1);
    const total = Math.min(limit ?? data.size, data.size);
    const bar = opts.json ? undefined : progressBar('evaluating', total, 'samples');
    const result = await evaluate(model, data, nodeBackend(), {
      batchSize: parseInteger('--batch', opts.batch, 1),
      limit,
      output: opts.output,
      threads: opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1),
      onProgress: (done) => bar?.update(done),
    });
    bar?.stop();
    if (opts.json) return printJson({ model: path, data: data.name, ...result });
    print(
      `${path} on ${data.name} (${result.n} samples): top-1 ${(result.top1 * 100).toFixed(2)}%, top-5 ${(result.top5 * 100).toFixed(2)}% in ${(result.ms / 1000).toFixed(1)} s`,
    );
  });
}
