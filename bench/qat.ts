/**
 * Quantization-aware training benchmark: static PTQ against 1 epoch of QAT from the same float
 * model, both measured as saved (QDQ on onnxruntime-node) on the 10 000 Fashion-MNIST test images.
 *
 *   npx tsx bench/qat.ts [--model float.onnx] [--epochs 1] [--write docs/benchmarks.md]
 *
 * Without --model it first trains fmnist-cnn with `mobilize train`'s defaults. PTQ is what
 * `mobilize quantize --scheme <s> --calib fashion-mnist:train` does (256 calibration samples,
 * min/max, per-channel weights); QAT starts from exactly that model.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QAT_DEFAULT_LR, type QatRecipeReport, runQat } from '../src/pipeline/qat.js';
import { runTraining } from '../src/pipeline/train.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string | undefined): string | undefined =>
  args.includes(name) ? args[args.indexOf(name) + 1] : fallback;
const epochs = Number(flag('--epochs', '1'));
const writeTo = flag('--write', undefined);
const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mobilize-bench-qat-'));
  let model = flag('--model', undefined);
  let source = `\`${model}\``;
  if (!model) {
    model = join(dir, 'fmnist-cnn.onnx');
    console.error('training fmnist-cnn with the defaults');
    const t = await runTraining({ model: 'fmnist-cnn', output: model });
    source = `fmnist-cnn trained by \`mobilize train\` with its defaults (test ${pct(t.testAccuracy)})`;
  }
  const rows: string[] = [];
  const results: QatRecipeReport[] = [];
  for (const scheme of ['int8', 'uint8'] as const) {
    console.error(`QAT from static ${scheme}`);
    const r = await runQat({ model, scheme, epochs, output: join(dir, `qat-${scheme}.onnx`), onStage: (s) => console.error(`  ${s}`) });
    results.push(r);
    const a = r.accuracy;
    const gain = ((a.qat ?? 0) - (a.ptq ?? 0)) * 100;
    console.error(`  float ${pct(a.float)}, PTQ ${pct(a.ptq)}, QAT ${pct(a.qat)}`);
    rows.push(
      `| ${scheme} | ${pct(a.float)} | ${pct(a.ptq)} | **${pct(a.qat)}** | ${gain >= 0 ? '+' : ''}${gain.toFixed(2)} pt | ${r.stepMs.toFixed(1)} ms | ${r.seconds.toFixed(0)} s |`,
    );
  }
  const date = new Date().toISOString().slice(0, 10);
  const body = [
    `${date}, ${source}; QAT: ${epochs} epoch of AdamW at peak lr ${QAT_DEFAULT_LR} (cosine), batch ${results[0].batchSize}, seed 0, scales fixed at PTQ's; accuracy of the saved QDQ models on the 10 000 test images:`,
    '',
    '| scheme | float | static PTQ | QAT | QAT − PTQ | QAT step | QAT training |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
  console.log(body);
  if (writeTo) updateSection(writeTo, 'qat', body);
}

await main();
