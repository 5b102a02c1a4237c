/**
 * `mobilize distill`: trains a student (a built-in architecture or an ONNX file) to match a
 * teacher's soft labels — loss α·T²·KD + (1−α)·cross-entropy — with the training flags of
 * `mobilize train`.
 */
import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { runTraining } from '../../pipeline/train.js';
import { addTrainingOptions, BUILTINS, parseNumber, progressHooks, recipeFrom, summary, type TrainingFlags } from './train.js';

interface DistillFlags extends TrainingFlags {
  teacher: string;
  student: string;
  temperature: string;
  alpha: string;
}

export function registerDistill(program: Command): void {
  const distill = program
    .command('distill')
    .description('train a student to match a teacher (knowledge distillation: α·T²·KD + (1−α)·cross-entropy)')
    .requiredOption('--teacher <model.onnx>', 'the trained teacher')
    .option('--student <model>', `a built-in architecture (${BUILTINS}) or an .onnx file`, 'fmnist-small')
    .option('--temperature <T>', 'softmax temperature of the soft labels', '4')
    .option('--alpha <a>', 'weight of the distillation term (the labels get 1 − α)', '0.7');
  addTrainingOptions(distill).action(async (opts: DistillFlags) => {
    const temperature = parseNumber('--temperature', opts.temperature, 0) as number;
    if (temperature === 0) throw badInput('--temperature 0: expected a number above 0');
    const alpha = parseNumber('--alpha', opts.alpha, 0, 1) as number;
    const report = await runTraining({
      ...recipeFrom(opts),
      model: opts.student,
      distill: { teacher: opts.teacher, temperature, alpha },
      ...progressHooks(opts.json),
    });
    summary(report, opts.json);
  });
}
