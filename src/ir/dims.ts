/**
 * Arithmetic on dimensions that may be symbolic. A symbolic dim is a product of a positive
 * integer and named factors ("N", "3*N*S"); that covers batch and sequence dims through
 * Reshape/Flatten/MatMul. Anything else (sums, floor divisions of symbols) becomes unknown
 * (null) rather than a wrong guess.
 */
import type { Dim, Shape } from './types.js';

interface Monomial {
  coef: number;
  syms: string[];
}

function parse(d: number | string): Monomial {
  if (typeof d === 'number') return { coef: d, syms: [] };
  const parts = d.split('*');
  if (parts.length > 1 && parts.every((p) => p.length > 0)) {
    let coef = 1;
    const syms: string[] = [];
    for (const p of parts) {
      if (/^\d+$/.test(p)) coef *= Number(p);
      else syms.push(p);
    }
    return { coef, syms: syms.sort() };
  }
  return { coef: 1, syms: [d] };
}

function format(m: Monomial): Dim {
  if (m.syms.length === 0) return m.coef;
  if (m.coef === 0) return 0;
  const head = m.coef === 1 ? [] : [String(m.coef)];
  return [...head, ...m.syms].join('*');
}

export function isKnown(d: Dim): d is number {
  return typeof d === 'number';
}

/** Known to be equal (same number, or same symbol). Unknown dims are never known equal. */
export function dimEquals(a: Dim, b: Dim): boolean {
  if (a === null || b === null) return false;
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  return format(parse(a)) === format(parse(b));
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (a === 0 || b === 0) return 0;
  if (a === null || b === null) return null;
  const x = parse(a);
  const y = parse(b);
  return format({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms].sort() });
}

export function dimProduct(dims: readonly Dim[]): Dim {
  let p: Dim = 1;
  for (const d of dims) p = dimMul(p, d);
  return p;
}

/** a / b when it divides exactly, else null. */
export function dimDiv(a: Dim, b: Dim): Dim {
  if (a === null || b === null || b === 0) return null;
  const x = parse(a);
  const y = parse(b);
  if (x.coef % y.coef !== 0) return null;
  const rest = [...x.syms];
  for (const s of y.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  return format({ coef: x.coef / y.coef, syms: rest });
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return null;
}

export function dimSub(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (b === 0) return a;
  return null;
}

/** Product of a shape's dims, or null when any is unknown. */
export function shapeProduct(shape: readonly Dim[]): Dim {
  return dimProduct(shape);
}

/**
 * Multidirectional (numpy) broadcasting. Returns the result shape, or a message when two known
 * dims cannot broadcast. A symbolic dim against 1 stays symbolic; against a number > 1 it takes
 * that number (it must be equal for the model to be valid).
 */
export function broadcastShapes(shapes: ReadonlyArray<readonly Dim[]>): Shape | string {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s.length);
      if (k < 0) continue;
      const e = s[k];
      if (e === 1) continue;
      if (d === 1) {
        d = e;
      } else if (typeof d === 'number' && typeof e === 'number') {
        if (d !== e) return `cannot broadcast dims ${d} and ${e}`;
      } else if (typeof e === 'number') {
        d = e;
      } else if (!(typeof d === 'number') && !dimEquals(d, e)) {
        d = null;
      }
    }
    out.push(d);
  }
  return out;
}

/** Normalises a possibly negative axis against a rank; undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/** Replaces symbolic dims by values from `bindings` (e.g. N → 1) where the symbol is bound. */
export function bindDims(shape: readonly Dim[], bindings: ReadonlyMap<string, number>): Shape {
  return shape.map((d) => {
    if (typeof d !== 'string') return d;
    const m = parse(d);
    let coef = m.coef;
    const rest: string[] = [];
    for (const s of m.syms) {
      const v = bindings.get(s);
      if (v === undefined) rest.push(s);
      else coef *= v;
    }
    return format({ coef, syms: rest });
  });
}
