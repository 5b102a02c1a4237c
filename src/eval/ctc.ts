/**
 * Text out of a CTC recogniser (PaddleOCR's rec models and the like): greedy decoding of its
 * [N, T, C] per-step class scores, and how closely two readings of the same images agree.
 * Class 0 is CTC's blank; `classes[k]` is the text of class k (PaddleOCR: '' for the blank, then
 * the dictionary's lines, then ' ').
 */
import { badInput } from '../errors.js';
import type { Tensor } from '../ir/tensor.js';

/** Arg-max per step, repeats merged, blanks dropped; one string per sample, trimmed. */
export function ctcGreedyDecode(scores: Tensor, classes: readonly string[]): string[] {
  if (scores.rank !== 3) throw badInput(`CTC decoding reads [N, T, C] scores; got ${scores.dims.join('×')}`);
  const [n, steps, c] = scores.dims;
  if (c !== classes.length) throw badInput(`the recogniser scores ${c} classes; the dictionary gives ${classes.length}`);
  const d = scores.toFloat32();
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    let prev = -1;
    let text = '';
    for (let t = 0; t < steps; t++) {
      const base = (i * steps + t) * c;
      let best = 0;
      for (let k = 1; k < c; k++) if (d[base + k] > d[base + best]) best = k;
      if (best !== prev && best !== 0) text += classes[best];
      prev = best;
    }
    texts.push(text.trim());
  }
  return texts;
}

/** PaddleOCR's class list from its dictionary file's text: blank, one class per line, space. */
export function paddleOcrClasses(dictionary: string): string[] {
  const lines = dictionary.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines[lines.length - 1] === '') lines.pop();
  return ['', ...lines, ' '];
}

/** Levenshtein distance between two strings, by code point. */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length];
}

export interface TextAgreement {
  /** Strings read identically. */
  strings: number;
  /** Characters that agree: the reference's length minus the edit distance, summed (never below 0 per string). */
  chars: number;
  /** Characters of the reference, summed. */
  total: number;
}

/** How closely `candidate` reads what `reference` read, string by string. */
export function textAgreement(reference: readonly string[], candidate: readonly string[]): TextAgreement {
  if (reference.length !== candidate.length) throw badInput(`${reference.length} reference strings against ${candidate.length}`);
  let strings = 0;
  let chars = 0;
  let total = 0;
  for (let i = 0; i < reference.length; i++) {
    if (reference[i] === candidate[i]) strings++;
    const n = [...reference[i]].length;
    total += n;
    chars += Math.max(0, n - editDistance(reference[i], candidate[i]));
  }
  return { strings, chars, total };
}
