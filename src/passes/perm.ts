/**
 * Permutation arithmetic shared by the layout passes (merge-transposes, transpose-sinking,
 * layout-nhwc). A Transpose with perm `p` gives `y` with `y.shape[i] = x.shape[p[i]]`: axis `i`
 * of the output is axis `p[i]` of the input.
 */
import type { Node } from '../ir/graph.js';
import type { Dim, Shape } from '../ir/types.js';
import { rankOf } from './match.js';

/** The node's perm: the attribute, or (ONNX default) the reversed axes when the input's rank is known. */
export function transposePerm(t: Node): number[] | undefined {
  const given = t.ints('perm');
  const perm = given ?? reversed(rankOf(t.input(0)));
  return perm && isPermutation(perm) ? perm : undefined;
}

function reversed(rank: number | undefined): number[] | undefined {
  return rank === undefined ? undefined : Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

export function isPermutation(p: readonly number[]): boolean {
  const seen = new Array<boolean>(p.length).fill(false);
  for (const a of p) {
    if (!Number.isInteger(a) || a < 0 || a >= p.length || seen[a]) return false;
    seen[a] = true;
  }
  return true;
}

export function isIdentityPerm(p: readonly number[]): boolean {
  return p.every((a, i) => a === i);
}

export function samePerm(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function invertPerm(p: readonly number[]): number[] {
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => {
    inv[a] = i;
  });
  return inv;
}

/** Transpose(Transpose(x, first), second) = Transpose(x, composePerms(first, second)). */
export function composePerms(first: readonly number[], second: readonly number[]): number[] {
  return second.map((a) => first[a]);
}

/** The shape of Transpose(x, p) given x's shape (or anything else kept per axis). */
export function permuteShape<T>(shape: readonly T[], p: readonly number[]): T[] {
  return p.map((a) => shape[a]);
}

/** The shape of x given the shape of Transpose(x, p). */
export function unpermuteShape(shape: Shape, p: readonly number[]): Shape {
  const out: Shape = new Array<Dim>(p.length).fill(null);
  p.forEach((a, i) => {
    out[a] = shape[i];
  });
  return out;
}
