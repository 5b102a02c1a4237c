import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseNpy, serializeNpy } from '../../data/npy.js';
import { badInput } from '../../errors.js';
import { loadModel, readFileBytes, writeFileAtomically } from '../../io/files.js';
import { runModel } from '../../pipeline/run.js';
import type { Feeds } from '../../runtime/backend.js';
import { nodeBackend } from '../../runtime/node.js';
import { referenceBackend } from '../../runtime/reference.js';
import { formatDims, formatNumber, table } from '../format.js';
import { bindUnnamedShape, parseInputFiles, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';

interface RunFlags {
  input?: string[];
  random?: boolean;
  seed: string;
  inputShape?: string[];
  output?: string;
  threads?: string;
  backend: string;
  json?: boolean;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a model once on onnxruntime and summarise its outputs')
    .argument('<model>', 'model file')
    .option('--input <name=file.npy...>', 'an input tensor from a .npy file (repeatable)')
    .option('--random', 'make inputs not given with --input at random (a free batch dim as 1, other free dims as 32)')
    .option('--seed <n>', 'seed for --random', '0')
    .option('--input-shape <name:dims...>', 'fix input dims for --random, e.g. input:1x3x224x224')
    .option('-o, --output <folder>', 'write each output as <folder>/<name>.npy')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--backend <name>', 'onnxruntime or reference (the TypeScript interpreter)', 'onnxruntime')
    .option('--json', 'print one JSON object')
    .action(async (path: string, opts: RunFlags) => {
      if (!opts.input && !opts.random) throw badInput('give inputs with --input name=file.npy, or --random');
      if (opts.backend !== 'onnxruntime' && opts.backend !== 'reference')
        throw badInput(`--backend ${opts.backend}: expected onnxruntime or reference`);
      const model = loadModel(path);
      const names = model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
      const feeds: Feeds = {};
      for (const [name, file] of parseInputFiles(opts.input)) feeds[name] = parseNpy(readFileBytes(file, '.npy file'), file);
      if (opts.output && existsSync(opts.output) && !statSync(opts.output).isDirectory())
        throw badInput(`-o ${opts.output}: exists and is not a folder`);
      const result = await runModel(model, {
        backend: opts.backend === 'reference' ? referenceBackend() : nodeBackend(),
        feeds,
        random: opts.random,
        seed: parseInteger('--seed', opts.seed),
        inputShapes: bindUnnamedShape(parseInputShapes(opts.inputShape), names),
        threads: opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1),
      });
      const written: string[] = [];
      if (opts.output) {
        mkdirSync(opts.output, { recursive: true });
        for (const [name, t] of Object.entries(result.outputs)) {
          const file = join(opts.output, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.npy`);
          writeFileAtomically(file, serializeNpy(t));
          written.push(file);
        }
      }
      if (opts.json) return printJson({ model: path, backend: result.backend, ms: result.ms, outputs: result.summaries, files: written });
      print(`${path}: ran on ${result.backend} in ${result.ms.toFixed(1)} ms`);
      print(
        table([
          ['output', 'dtype', 'shape', 'min', 'max', 'mean', 'std'],
          ...result.summaries.map((s) => [
            s.name,
            s.dtype,
            formatDims(s.shape),
            formatNumber(s.min),
            formatNumber(s.max),
            formatNumber(s.mean),
            formatNumber(s.std),
          ]),
        ]),
      );
      for (const s of result.summaries) if (s.top5) print(`  ${s.name} top-5 (first row): ${s.top5.join(', ')}`);
      for (const f of written) print(`wrote ${f}`);
    });
}
