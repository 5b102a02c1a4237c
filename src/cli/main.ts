/**
 * The `mobilize` command line. It parses flags and prints; the work is done by library calls.
 * Exit codes: 0 ok, 1 a check failed, 2 bad input (model, data, flag or file).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { firstLine, isMobilizeError } from '../errors.js';
import { registerBench } from './commands/bench.js';
import { registerCompare } from './commands/compare.js';
import { registerConvert } from './commands/convert.js';
import { registerDemo } from './commands/demo.js';
import { registerDistill } from './commands/distill.js';
import { registerEval } from './commands/eval.js';
import { registerExport } from './commands/export.js';
import { registerInspect } from './commands/inspect.js';
import { registerOptimize } from './commands/optimize.js';
import { registerPrune } from './commands/prune.js';
import { registerQat } from './commands/qat.js';
import { registerQuantize } from './commands/quantize.js';
import { registerRun } from './commands/run.js';
import { registerTrain } from './commands/train.js';
import { registerVerify } from './commands/verify.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

export function buildProgram(): Command {
  const program = new Command('mobilize')
    .description('carry a trained neural network onto a phone: inspect, convert, optimize, quantize, export and verify models')
    .version(packageVersion())
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'mobilize: ')) });
  registerDemo(program);
  registerInspect(program);
  registerConvert(program);
  registerOptimize(program);
  registerRun(program);
  registerEval(program);
  registerQuantize(program);
  registerCompare(program);
  registerBench(program);
  registerTrain(program);
  registerPrune(program);
  registerDistill(program);
  registerQat(program);
  registerVerify(program);
  registerExport(program);
  // Every command rejects unknown options and surplus arguments, and exits through our handler.
  const strict = (c: Command): void => {
    c.exitOverride().allowExcessArguments(false).allowUnknownOption(false);
    for (const sub of c.commands) strict(sub);
  };
  strict(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      if (e.code === 'commander.executeSubCommandAsync') return 0;
      process.stderr.write('(run mobilize --help, or mobilize <command> --help)\n');
      return 2;
    }
    if (isMobilizeError(e)) {
      process.stderr.write(`mobilize: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`mobilize: internal error: ${firstLine(e)}\n`);
    if (process.env.MOBILIZE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}
