/**
 * Per-layer sensitivity: quantize one layer at a time — its input, weight, bias and output, the
 * rest of the model float — and measure what that alone costs: top-1 points lost on labelled
 * data, else the SQNR of the output against the float model. The ranking, worst first, says
 * where the quantization noise that matters enters; fallback and mixed precision read it.
 *
 * On labelled data one layer rarely moves accuracy by more than a sample or two, so ties in the
 * accuracy drop are broken by the output's noise (NSR), which is measured on the same run.
 */
import { dropPoints, type Score, type Scorer } from './scoring.js';
import type { Variants } from './variants.js';

export interface LayerSensitivity {
  layer: string;
  op: string;
  depthwise: boolean;
  /** Output SQNR with this layer alone quantized (dB). */
  sqnrDb: number;
  /** Its noise-to-signal ratio (10^(−SQNR/10)). */
  nsr: number;
  /** Top-1 points lost with this layer alone quantized (labelled data only). */
  drop?: number;
}

export interface SensitivityReport {
  /** 'accuracy' on labelled data, else 'sqnr'. */
  metric: 'accuracy' | 'sqnr';
  samples: number;
  /** The float model's score. */
  float: Score;
  /** Most sensitive first. */
  layers: LayerSensitivity[];
  ms: number;
}

/** Orders worst first: larger accuracy drop, then more noise. */
export function byWorst(a: LayerSensitivity, b: LayerSensitivity): number {
  const d = (b.drop ?? 0) - (a.drop ?? 0);
  if (Math.abs(d) > 1e-9) return d;
  return b.nsr - a.nsr;
}

/** Quantizes each layer alone and scores it. */
export async function layerSensitivity(
  variants: Variants,
  scorer: Scorer,
  options: { onProgress?: (done: number, total: number) => void; layers?: readonly string[] } = {},
): Promise<SensitivityReport> {
  const t0 = performance.now();
  const wanted = options.layers ? new Set(options.layers) : undefined;
  const layers = variants.layers.filter((l) => !wanted || wanted.has(l.name));
  const result: LayerSensitivity[] = [];
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    const { model } = await variants.build({ only: l.name });
    const s = await scorer.score(model);
    result.push(entry(l, s, scorer));
    options.onProgress?.(i + 1, layers.length);
  }
  result.sort(byWorst);
  return {
    metric: scorer.labelled ? 'accuracy' : 'sqnr',
    samples: scorer.samples,
    float: scorer.float,
    layers: result,
    ms: performance.now() - t0,
  };
}

function entry(l: { name: string; op: string; depthwise: boolean }, s: Score, scorer: Scorer): LayerSensitivity {
  return {
    layer: l.name,
    op: l.op,
    depthwise: l.depthwise,
    sqnrDb: s.sqnrDb,
    nsr: s.nsr,
    ...(scorer.labelled ? { drop: dropPoints(scorer.float, s) } : {}),
  };
}
