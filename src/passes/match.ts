/**
 * Named constraints that patterns are written with, so a rewrite reads like its declaration:
 *
 *   const conv = producedBy(bn.input(0), 'Conv');
 *   if (!conv || !hasOneUse(conv.output()) || !isConstant(conv.input(1))) return undefined;
 */
import { isOnnxDomain, type Node, type Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { isStaticShape } from '../ir/types.js';
import { constantOf } from '../ops/constants.js';

/** Read by exactly one node input and not a graph output: safe to fold into its consumer. */
export function hasOneUse(v: Value | null | undefined): v is Value {
  return !!v && v.uses.length === 1 && !v.isGraphOutput;
}

/** Not read by anything (and not a graph output). */
export function isUnused(v: Value | null | undefined): boolean {
  return !v || (v.uses.length === 0 && !v.isGraphOutput);
}

/** Known before running: an initializer callers cannot override, or a Constant node's output. */
export function isConstant(v: Value | null | undefined): v is Value {
  return !!v && constantOf(v) !== undefined;
}

export function constantValue(v: Value | null | undefined): Tensor | undefined {
  return v ? constantOf(v) : undefined;
}

/** The node producing `v` when it is one of `ops` in the default ONNX domain. */
export function producedBy(v: Value | null | undefined, ...ops: string[]): Node | undefined {
  const p = v?.producer;
  return p && isOnnxDomain(p.domain) && ops.includes(p.opType) ? p : undefined;
}

/** The single consumer of `v` when it is one of `ops`. */
export function onlyConsumer(v: Value | null | undefined, ...ops: string[]): Node | undefined {
  if (!hasOneUse(v)) return undefined;
  const n = v.uses[0].node;
  return isOnnxDomain(n.domain) && (ops.length === 0 || ops.includes(n.opType)) ? n : undefined;
}

export function isOp(n: Node | undefined, ...ops: string[]): n is Node {
  return !!n && isOnnxDomain(n.domain) && ops.includes(n.opType);
}

/** Tensor type rank of a value, when known. */
export function rankOf(v: Value | null | undefined): number | undefined {
  const t = v?.type;
  return t?.kind === 'tensor' ? t.shape?.length : undefined;
}

export function rankIs(v: Value | null | undefined, rank: number): boolean {
  return rankOf(v) === rank;
}

/** Static dims of a value, when every dim is known. */
export function staticShape(v: Value | null | undefined): number[] | undefined {
  const t = v?.type;
  if (t?.kind !== 'tensor') return undefined;
  return isStaticShape(t.shape) ? t.shape : undefined;
}

export function dtypeOf(v: Value | null | undefined): string | undefined {
  const t = v?.type;
  return t?.kind === 'tensor' ? t.dtype : undefined;
}

/** A constant whose every element equals `x` (any shape). */
export function isConstantAll(v: Value | null | undefined, x: number): boolean {
  const t = constantValue(v);
  if (!t || t.dtype === 'string') return false;
  try {
    return t.toNumbers().every((e) => e === x);
  } catch {
    return false;
  }
}

/** Elements of a small constant as numbers, or undefined. */
export function constantNumbers(v: Value | null | undefined, maxElements = 4096): number[] | undefined {
  const t = constantValue(v);
  if (!t || t.dtype === 'string' || t.size > maxElements) return undefined;
  try {
    return t.toNumbers();
  } catch {
    return undefined;
  }
}

/** True when the node has no subgraphs and only inputs/outputs of the given count (absent optional ones allowed). */
export function isPlain(n: Node): boolean {
  return n.subgraphs().length === 0;
}

/**
 * True when every use of `from` can move to `to` without an Identity: a graph output keeps its
 * name by handing it to `to`, which a graph input, another output or a constant cannot take.
 */
export function canReplace(from: Value, to: Value): boolean {
  if (!from.isGraphOutput) return true;
  return to.graph === from.graph && to.producer !== undefined && !to.isGraphOutput && !to.isGraphInput;
}
