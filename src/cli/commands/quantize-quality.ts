/**
 * The quality flags of `mobilize quantize` (cross-layer equalization, bias correction,
 * sensitivity, fallback to float, mixed precision): their options, their checks — all before
 * any work, so bad input writes nothing — and what the command prints about them.
 */
import type { Command } from 'commander';
import type { Dataset } from '../../data/dataset.js';
import type { Preprocess } from '../../data/preprocess.js';
import { openDataset } from '../../data/spec.js';
import { badInput, checkFailed, type MobilizeError } from '../../errors.js';
import type { Value } from '../../ir/graph.js';
import { checkQualityOptions, type QualityOptions, type QualityReport } from '../../quantize/index.js';
import { formatBytes, table } from '../format.js';
import { parseInteger } from '../options.js';
import { print } from '../output.js';
import { type Progress, progressBar } from '../progress.js';

export interface QualityFlags {
  equalize?: boolean | string;
  biasCorrection?: boolean | string;
  biasCorrectionSamples?: string;
  eval?: string;
  evalSize?: string;
  maxDrop?: string;
  minSqnr?: string;
  sensitivity?: boolean;
  sizeBudget?: string;
}

export function addQualityOptions(cmd: Command): Command {
  return cmd
    .option(
      '--equalize [ranges]',
      'cross-layer equalization before calibration (Conv → ReLU/pool → Conv pairs; float outputs unchanged): ranges from the weights (default) or the calibrated activations',
    )
    .option(
      '--bias-correction [mode]',
      "correct each layer's bias for the mean shift quantization causes: empirical (default; matches every layer's output mean to the float model's, layer by layer) or weights (E[(W̃−W)x] only, one pass)",
    )
    .option('--bias-correction-samples <n>', 'calibration samples bias correction averages over (default 16)')
    .option('--eval <data>', 'data the quality tools score on (labelled for --max-drop); default: the calibration samples')
    .option('--eval-size <n>', 'score on the first n samples of --eval')
    .option('--max-drop <points>', 'keep the most sensitive layers float until top-1 drops by at most this (needs labelled --eval)')
    .option('--min-sqnr <dB>', 'keep the most sensitive layers float until the output SQNR against float is at least this')
    .option('--sensitivity', 'quantize one layer at a time and print the ranking, most sensitive first')
    .option(
      '--size-budget <fraction>',
      'mixed precision: each layer int8, int4 (weights) or fp16, weight bytes at most this fraction of float32, least total sensitivity',
    );
}

function number(flag: string, text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x)) throw badInput(`${flag} ${text}: expected a number`);
  return x;
}

/** The flags alone, checked before the model or any data is read. */
export function parseQualityFlags(opts: QualityFlags): Omit<QualityOptions, 'eval'> {
  const q: Omit<QualityOptions, 'eval'> = {};
  if (opts.equalize !== undefined) {
    if (opts.equalize !== true && opts.equalize !== 'weights' && opts.equalize !== 'activations') {
      throw badInput(`--equalize ${opts.equalize}: expected weights or activations (or nothing)`);
    }
    q.equalize = opts.equalize;
  }
  if (opts.biasCorrection !== undefined) {
    if (opts.biasCorrection !== true && opts.biasCorrection !== 'empirical' && opts.biasCorrection !== 'weights') {
      throw badInput(`--bias-correction ${opts.biasCorrection}: expected empirical or weights (or nothing)`);
    }
    q.biasCorrection = opts.biasCorrection;
  }
  if (opts.biasCorrectionSamples !== undefined) {
    if (!opts.biasCorrection) throw badInput('--bias-correction-samples goes with --bias-correction');
    q.biasCorrectionSamples = parseInteger('--bias-correction-samples', opts.biasCorrectionSamples, 1);
  }
  if (opts.evalSize !== undefined) q.evalSize = parseInteger('--eval-size', opts.evalSize, 1);
  if (opts.maxDrop !== undefined) q.maxDrop = number('--max-drop', opts.maxDrop);
  if (opts.minSqnr !== undefined) q.minSqnr = number('--min-sqnr', opts.minSqnr);
  if (opts.sensitivity) q.sensitivity = true;
  if (opts.sizeBudget !== undefined) q.sizeBudget = number('--size-budget', opts.sizeBudget);
  checkQualityOptions(q, !!opts.eval);
  if (
    opts.eval &&
    !(q.sensitivity || q.maxDrop !== undefined || q.minSqnr !== undefined || q.sizeBudget !== undefined || q.biasCorrection)
  ) {
    throw badInput('--eval is read by --sensitivity, --max-drop, --min-sqnr, --size-budget and --bias-correction; give one of them');
  }
  return q;
}

/** Opens --eval like the calibration data (same input, same pre-processing) and checks the options together. */
export function openQualityData(q: Omit<QualityOptions, 'eval'>, opts: QualityFlags, input: () => Value, pre: Preprocess): QualityOptions {
  const out: QualityOptions = { ...q };
  if (opts.eval) out.eval = openDataset(opts.eval, { defaultSplit: 'test', input: input(), ...pre }) as Dataset;
  checkQualityOptions(out);
  return out;
}

/** Progress bars for the long stages (sensitivity, fallback, int4 sensitivity). */
export function stageProgress(json: boolean | undefined): { onStage: QualityOptions['onStage']; stop: () => void } {
  let current: { name: string; bar: Progress } | undefined;
  return {
    onStage: (name, done, total) => {
      if (json) return;
      if (current?.name !== name) {
        current?.bar.stop();
        current = { name, bar: progressBar(name, total, name === 'fallback' ? 'layers float' : 'layers') };
      }
      current.bar.update(done);
    },
    stop: () => current?.bar.stop(),
  };
}

const db = (x: number): string => (x === Number.POSITIVE_INFINITY ? '∞' : `${x.toFixed(1)} dB`);

/** The human-readable part of the report about the quality tools. */
export function printQuality(q: QualityReport | undefined): void {
  if (!q) return;
  if (q.equalize) {
    const e = q.equalize;
    print(
      `  equalized ${e.pairs.length} conv pairs (${e.ranges}, ${e.iterations} sweeps): channel-range spread ${e.spread.before.toFixed(1)}x → ${e.spread.after.toFixed(1)}x` +
        (e.skipped.length > 0
          ? `; ${e.skipped.length} pairs skipped (${[...new Set(e.skipped.map((s) => s.reason))].slice(0, 2).join('; ')})`
          : ''),
    );
  }
  if (q.sensitivity) {
    const s = q.sensitivity;
    print(
      `  sensitivity (each layer alone quantized, ${s.metric === 'accuracy' ? 'top-1 drop and ' : ''}output SQNR on ${s.samples} samples), most sensitive first:`,
    );
    print(
      table(
        [
          ['layer', 'op', ...(s.metric === 'accuracy' ? ['drop'] : []), 'SQNR'],
          ...s.layers.map((l) => [
            l.layer,
            l.depthwise ? `${l.op} (depthwise)` : l.op,
            ...(s.metric === 'accuracy' ? [`${(l.drop ?? 0).toFixed(2)} pt`] : []),
            db(l.sqnrDb),
          ]),
        ],
        '    ',
      ),
    );
  }
  if (q.fallback) {
    const f = q.fallback;
    const what = (d: number | undefined, s: { sqnrDb: number }): string =>
      (d !== undefined ? `drop ${d.toFixed(2)} pt, ` : '') + `SQNR ${db(s.sqnrDb)}`;
    print(
      `  fallback: ${f.met ? 'met' : 'NOT met'} with ${f.float.length} layers float (${what(f.initialDrop, f.initial)} → ${what(f.finalDrop, f.final)}; ${f.steps.length} measurements)`,
    );
    if (f.float.length > 0) print(`  kept float by fallback: ${f.float.join(', ')}`);
  }
  if (q.mixed) {
    const m = q.mixed;
    print(
      `  mixed precision: int8 ${m.counts.int8}, int4 ${m.counts.int4}, fp16 ${m.counts.fp16} layers; weights ${formatBytes(m.bytes)} of ${formatBytes(m.budgetBytes)} allowed (${(m.budget * 100).toFixed(0)}% of ${formatBytes(m.floatBytes)})${m.met ? '' : ' — budget NOT met'}`,
    );
    for (const p of ['int4', 'fp16'] as const) {
      const names = m.layers.filter((l) => l.precision === p).map((l) => l.layer);
      if (names.length > 0) print(`  ${p}: ${names.join(', ')}`);
    }
  }
  if (q.biasCorrection) {
    const b = q.biasCorrection;
    print(
      `  bias correction (${b.mode}, ${b.samples} samples): ${b.corrected} layers, SQNR ${db(b.before?.sqnrDb ?? 0)} → ${db(b.after?.sqnrDb ?? 0)}${b.kept ? '' : ' — not kept (it did not help)'}`,
    );
  }
  if (q.score) {
    const s = q.score;
    print(
      `  against float on ${s.data} (${s.samples} samples): output SQNR ${db(s.final.sqnrDb)}` +
        (s.drop !== undefined && s.float.accuracy !== undefined && s.final.accuracy !== undefined
          ? `, top-1 ${(s.float.accuracy * 100).toFixed(2)}% → ${(s.final.accuracy * 100).toFixed(2)}% (drop ${s.drop.toFixed(2)} pt)`
          : ''),
    );
  }
}

/**
 * The size budget the result did not meet (the byte estimate fell short twice; the model is
 * written all the same, for inspection): the failed check to exit with, else undefined. A
 * fallback limit is always met, at worst with every layer float.
 */
export function qualityFailure(q: QualityReport | undefined): MobilizeError | undefined {
  const m = q?.mixed;
  if (m && !m.met) {
    return checkFailed(
      `--size-budget ${m.budget}: the result takes ${formatBytes(m.bytes)}, over the ${formatBytes(m.budgetBytes)} allowed`,
    );
  }
  return undefined;
}
