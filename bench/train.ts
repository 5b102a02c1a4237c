/**
 * Training benchmark, side by side in one run:
 *   - step time of fmnist-cnn at batch 128 (AdamW): mobilize's training graph on onnxruntime-node
 *     against PyTorch (Debian's python3-torch, bench/train_torch.py), each in its own process with
 *     2 threads, alternating rounds; the peak RSS of each process;
 *   - `mobilize train` with its defaults (3 epochs): loss, train and test accuracy per epoch;
 *   - distillation: fmnist-small trained alone against fmnist-small distilled from the fmnist-cnn
 *     just trained, same epochs and seed;
 *   - with --torch-accuracy, PyTorch on the same default recipe, for reference.
 *
 *   npx tsx bench/train.ts [--steps 50] [--rounds 3] [--torch-accuracy] [--write docs/benchmarks.md]
 *
 * PyTorch is for this benchmark only: `apt-get install python3-torch`, run as /usr/bin/python3.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { FashionMnist } from '../src/data/fashion-mnist.js';
import { buildFmnistCnn } from '../src/models/fmnist.js';
import { runTraining, type TrainRecipe, type TrainRecipeReport } from '../src/pipeline/train.js';
import type { OrtModule } from '../src/runtime/ort.js';
import { buildTrainingStep } from '../src/train/step.js';
import { TrainingSession } from '../src/train/trainer.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const steps = Number(flag('--steps', '50'));
const rounds = Number(flag('--rounds', '3'));
const writeTo = args.includes('--write') ? flag('--write', '') : undefined;
const PYTHON = '/usr/bin/python3';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface StepFigures {
  stepMs: number;
  loopMs: number;
  maxRssMB: number;
  prepMs?: number;
}

/** Child mode: the training step of fmnist-cnn on onnxruntime-node, timed like the PyTorch script. */
async function oursStep(): Promise<StepFigures> {
  const data = new FashionMnist('train');
  const step = buildTrainingStep(buildFmnistCnn(0), { optimizer: { kind: 'adamw' } });
  const session = await TrainingSession.create(ort as unknown as OrtModule, step, { threads: 2 });
  const batch = 128;
  const stepTimes: number[] = [];
  const loopTimes: number[] = [];
  const prepTimes: number[] = [];
  const warmup = 5;
  for (let k = 0; k < warmup + steps; k++) {
    const t0 = performance.now();
    const lo = (k * batch) % (data.size - batch);
    const b = data.batchSync(Int32Array.from({ length: batch }, (_, i) => lo + i));
    const t1 = performance.now();
    const r = await session.run(b.input, b.label?.data as BigInt64Array, 1e-3);
    const t2 = performance.now();
    if (!Number.isFinite(r.loss)) throw new Error('loss is not finite');
    if (k >= warmup) {
      stepTimes.push(t2 - t1);
      loopTimes.push(t2 - t0);
      prepTimes.push(t1 - t0);
    }
  }
  await session.release();
  return {
    stepMs: median(stepTimes),
    loopMs: median(loopTimes),
    prepMs: median(prepTimes),
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

function child(cmd: string, argv: string[]): Record<string, unknown> {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
}

async function main(): Promise<void> {
  if (args[0] === '--child') {
    process.stdout.write(`${JSON.stringify(await oursStep())}\n`);
    return;
  }
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch']).status !== 0) {
    throw new Error(`${PYTHON} cannot import torch: apt-get install -y python3-torch (for this benchmark only)`);
  }
  const lines: string[] = [];
  const date = new Date().toISOString().slice(0, 10);

  // 1. Step time, alternating processes.
  const ours: StepFigures[] = [];
  const torch: StepFigures[] = [];
  let torchVersion = '';
  for (let r = 0; r < rounds; r++) {
    ours.push(
      child(process.execPath, ['--import', 'tsx', 'bench/train.ts', '--child', '--steps', String(steps)]) as unknown as StepFigures,
    );
    const t = child(PYTHON, ['bench/train_torch.py', 'step', '--steps', String(steps)]);
    torchVersion = String(t.torch);
    torch.push(t as unknown as StepFigures);
    console.error(`round ${r + 1}: ours ${ours[r].stepMs.toFixed(1)} ms, PyTorch ${torch[r].stepMs.toFixed(1)} ms`);
  }
  const m = (xs: StepFigures[], k: keyof StepFigures): number => median(xs.map((x) => x[k] as number));
  lines.push(
    `${date}, node ${process.version}, onnxruntime-node ${ort.env.versions.common}, PyTorch ${torchVersion} (Debian python3-torch), 2 threads each, fmnist-cnn, batch 128, AdamW; median of ${steps} steps per process, median over ${rounds} alternating processes each:`,
    '',
    '| | step (forward + backward + update) | loop iteration (with the batch made) | peak RSS |',
    '| --- | --- | --- | --- |',
    `| mobilize (onnxruntime-node) | **${m(ours, 'stepMs').toFixed(1)} ms** | ${m(ours, 'loopMs').toFixed(1)} ms (batch ${m(ours, 'prepMs').toFixed(2)} ms) | ${m(ours, 'maxRssMB').toFixed(0)} MB |`,
    `| PyTorch | ${m(torch, 'stepMs').toFixed(1)} ms | ${m(torch, 'loopMs').toFixed(1)} ms | ${m(torch, 'maxRssMB').toFixed(0)} MB |`,
    `| ratio | **${(m(ours, 'stepMs') / m(torch, 'stepMs')).toFixed(2)}x** | ${(m(ours, 'loopMs') / m(torch, 'loopMs')).toFixed(2)}x | ${(m(ours, 'maxRssMB') / m(torch, 'maxRssMB')).toFixed(2)}x |`,
    '',
  );

  // 2. Accuracy with the defaults, 3. distillation.
  const dir = mkdtempSync(join(tmpdir(), 'mobilize-bench-train-'));
  const run = async (label: string, recipe: TrainRecipe): Promise<TrainRecipeReport> => {
    console.error(`training: ${label}`);
    const r = await runTraining(recipe);
    console.error(`  test ${r.epochs.map((e) => e.testAccuracy?.toFixed(4)).join(' ')}`);
    return r;
  };
  const row = (label: string, r: TrainRecipeReport): string =>
    `| ${label} | ${r.epochs.map((e) => `${e.loss.toFixed(3)} / ${pct(e.trainAccuracy)} / **${pct(e.testAccuracy)}**`).join(' | ')} | ${r.stepMs.toFixed(1)} ms | ${r.seconds.toFixed(0)} s |`;
  const teacherPath = join(dir, 'fmnist-cnn.onnx');
  const cnn = await run('fmnist-cnn, defaults', { model: 'fmnist-cnn', output: teacherPath });
  lines.push(
    `\`mobilize train\` with its defaults (fmnist-cnn, AdamW lr ${cnn.lr} weight decay ${cnn.optimizer.weightDecay}, ${cnn.schedule.warmup} warm-up steps then cosine, batch ${cnn.batchSize}, seed 0, no augmentation); each epoch: training loss / training accuracy / **test accuracy** (10 000 test images):`,
    '',
    '| run | epoch 1 | epoch 2 | epoch 3 | step | total |',
    '| --- | --- | --- | --- | --- | --- |',
    row('mobilize train', cnn),
  );
  if (args.includes('--torch-accuracy')) {
    console.error('training: PyTorch, the same recipe');
    const t = child(PYTHON, ['bench/train_torch.py', 'accuracy']) as {
      epochs: Array<{ loss: number; trainAccuracy: number; testAccuracy: number; seconds: number }>;
    };
    const total = t.epochs.reduce((a, e) => a + e.seconds, 0);
    lines.push(
      `| PyTorch, same recipe | ${t.epochs.map((e) => `${e.loss.toFixed(3)} / ${pct(e.trainAccuracy)} / **${pct(e.testAccuracy)}**`).join(' | ')} | – | ${total.toFixed(0)} s |`,
    );
  }
  lines.push('');

  const alone = await run('fmnist-small alone', { model: 'fmnist-small', output: join(dir, 'alone.onnx') });
  const distill = { teacher: teacherPath, temperature: 4, alpha: 0.7 };
  const kd = await run('fmnist-small distilled', { model: 'fmnist-small', output: join(dir, 'kd.onnx'), distill });
  lines.push(
    `Distillation: fmnist-small (${alone.parameters} parameters) trained alone and distilled from the fmnist-cnn above (test ${pct(cnn.testAccuracy)}), T = ${distill.temperature}, α = ${distill.alpha}; same defaults, epochs and seed:`,
    '',
    '| run | epoch 1 | epoch 2 | epoch 3 | step | total |',
    '| --- | --- | --- | --- | --- | --- |',
    row('fmnist-small alone', alone),
    row('fmnist-small distilled', kd),
    '',
    `Distilled minus alone, final test accuracy: **${(((kd.testAccuracy ?? 0) - (alone.testAccuracy ?? 0)) * 100).toFixed(2)} points**.`,
  );

  const body = lines.join('\n');
  console.log(body);
  if (writeTo) updateSection(writeTo, 'train', body);
}

function pct(x: number | undefined): string {
  return x === undefined ? '–' : `${(x * 100).toFixed(2)}%`;
}

await main();
