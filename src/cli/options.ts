/** Parsing of the flags the commands share (`--input-shape`, `--input`, numbers). */
import { badInput } from '../errors.js';
import type { Dim, Shape } from '../ir/types.js';

/**
 * `--input-shape name:1x3x224x224` (repeatable). A dim may be a symbol (`Nx3x224x224`). The name
 * may be left out when the model has one input: it is then returned under the key ''.
 */
export function parseInputShapes(specs: string[] | undefined): Record<string, Shape> | undefined {
  if (!specs || specs.length === 0) return undefined;
  const out: Record<string, Shape> = {};
  for (const spec of specs) {
    const colon = spec.lastIndexOf(':');
    const name = colon >= 0 ? spec.slice(0, colon) : '';
    const dimsText = colon >= 0 ? spec.slice(colon + 1) : spec;
    if (!/^(\d+|[A-Za-z_][A-Za-z0-9_]*)(x(\d+|[A-Za-z_][A-Za-z0-9_]*))*$/.test(dimsText)) {
      throw badInput(`--input-shape "${spec}": expected name:1x3x224x224 (dims separated by x)`);
    }
    const dims: Dim[] = dimsText.split('x').map((d) => {
      if (/^\d+$/.test(d)) {
        const n = Number(d);
        if (!Number.isSafeInteger(n) || n > 2 ** 31) throw badInput(`--input-shape "${spec}": dim ${d} is too large`);
        return n;
      }
      return d;
    });
    if (name in out) throw badInput(`--input-shape names "${name || '(unnamed)'}" twice`);
    out[name] = dims;
  }
  return out;
}

/** Resolves an unnamed `--input-shape` against a model with a single input. */
export function bindUnnamedShape(shapes: Record<string, Shape> | undefined, inputNames: string[]): Record<string, Shape> | undefined {
  if (!shapes || !('' in shapes)) return shapes;
  if (inputNames.length !== 1) {
    throw badInput(`--input-shape needs an input name (name:1x3x224x224); the model's inputs are: ${inputNames.join(', ')}`);
  }
  const { '': dims, ...rest } = shapes;
  return { ...rest, [inputNames[0]]: dims };
}

/** `--input name=file.npy` (repeatable). */
export function parseInputFiles(specs: string[] | undefined): Array<[string, string]> {
  return (specs ?? []).map((spec) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw badInput(`--input "${spec}": expected name=file.npy`);
    return [spec.slice(0, eq), spec.slice(eq + 1)];
  });
}

export function parseInteger(flag: string, text: string, min = 0): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw badInput(`${flag} ${text}: expected a whole number ≥ ${min}`);
  return n;
}
