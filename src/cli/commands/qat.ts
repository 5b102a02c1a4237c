/**
 * `mobilize qat`: quantization-aware training of a float model — static int8 quantization places
 * the Q/DQ pairs and scales, training through the fake-quantized graph adjusts the weights, and
 * the result is a QDQ model (int8 weights, int32 biases) like `mobilize quantize` writes.
 */
import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { QAT_DEFAULT_LR, QAT_SCHEMES, type QatRecipeReport, type QatScheme, runQat } from '../../pipeline/qat.js';
import { DEFAULT_CALIB_SIZE } from '../../quantize/calibrate.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatBytes } from '../format.js';
import { parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { parseNumber, pct, progressHooks } from './train.js';

interface QatFlags extends DataFlags {
  data: string;
  testData?: string;
  scheme: string;
  calibSize: string;
  epochs: string;
  batch: string;
  lr?: string;
  optimizer: string;
  seed: string;
  freeze?: string[];
  limit?: string;
  testLimit?: string;
  threads?: string;
  output: string;
  json?: boolean;
}

function summary(r: QatRecipeReport, json: boolean | undefined): void {
  if (json) {
    const { output, ...rest } = r;
    printJson({ ...rest, output: output.path, bytes: output.bytes });
    return;
  }
  const a = r.accuracy;
  print(
    `${r.fakeQuant.weights} weights and ${r.fakeQuant.biases} biases trained through fake quantization: ${r.steps} steps of ${r.batchSize}, ${r.stepMs.toFixed(1)} ms a step, ${r.seconds.toFixed(1)} s in all`,
  );
  if (r.test) print(`${r.test}: float ${pct(a.float)}, static ${r.scheme} (PTQ) ${pct(a.ptq)}, after QAT ${pct(a.qat)}`);
  print(`wrote ${r.output.path} (${formatBytes(r.output.bytes)})`);
}

export function registerQat(program: Command): void {
  const cmd = program
    .command('qat')
    .description('quantization-aware training: int8 QDQ model from a float one, its weights trained through fake quantization')
    .argument('<model>', 'the float model (.onnx)')
    .option(
      '--data <spec>',
      'training and calibration data: fashion-mnist (its train split), an .npz with inputs and labels, or an image folder',
      'fashion-mnist',
    )
    .option('--test-data <spec>', 'data to measure accuracy on (default fashion-mnist:test with fashion-mnist)')
    .option('--scheme <name>', `starting static quantization: ${QAT_SCHEMES.join(' (TFLite, ARM) or ')} (x86)`, 'int8')
    .option('--calib-size <n>', 'calibration samples for the starting scales', String(DEFAULT_CALIB_SIZE))
    .option('--epochs <n>', 'passes over the training data', '1')
    .option('--batch <n>', 'batch size', '128')
    .option('--lr <x>', `peak learning rate (cosine schedule; default ${QAT_DEFAULT_LR})`)
    .option('--optimizer <name>', 'adamw, adam or sgd', 'adamw')
    .option('--seed <n>', 'seeds shuffling: the same seed gives the same weights', '0')
    .option('--freeze <names...>', 'initializers kept fixed (exact names, or a prefix ending in *)')
    .option('--limit <n>', 'train on the first n samples only')
    .option('--test-limit <n>', 'measure accuracy on the first n samples only')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .requiredOption('-o, --output <file>', 'the quantized model (.onnx, QDQ)')
    .option('--json', 'print one JSON object');
  addDataOptions(cmd).action(async (model: string, opts: QatFlags) => {
    if (!(QAT_SCHEMES as readonly string[]).includes(opts.scheme)) {
      throw badInput(`--scheme ${opts.scheme}: quantization-aware training takes ${QAT_SCHEMES.join(' or ')}`);
    }
    const kind = opts.optimizer;
    if (kind !== 'adam' && kind !== 'adamw' && kind !== 'sgd') throw badInput(`--optimizer ${kind}: expected adamw, adam or sgd`);
    const lr = parseNumber('--lr', opts.lr, 0);
    if (lr === 0) throw badInput('--lr 0: the learning rate must be above 0');
    const hooks = progressHooks(opts.json);
    const report = await runQat({
      model,
      output: opts.output,
      data: opts.data,
      testData: opts.testData,
      preprocess: preprocessFrom(opts),
      scheme: opts.scheme as QatScheme,
      calibSize: parseInteger('--calib-size', opts.calibSize, 1),
      epochs: parseInteger('--epochs', opts.epochs, 1),
      batchSize: parseInteger('--batch', opts.batch, 1),
      lr,
      optimizer: { kind },
      seed: parseInteger('--seed', opts.seed, 0),
      freeze: opts.freeze,
      limit: opts.limit === undefined ? undefined : parseInteger('--limit', opts.limit, 1),
      testLimit: opts.testLimit === undefined ? undefined : parseInteger('--test-limit', opts.testLimit, 1),
      threads: opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1),
      onStage: opts.json ? undefined : (s) => process.stderr.write(`${s}\n`),
      ...hooks,
    });
    summary(report, opts.json);
  });
}
