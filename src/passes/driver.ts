/**
 * Runs passes over a model — every graph, subgraphs included — until none of them changes
 * anything, timing and counting each. Shapes are re-inferred at the start of every round so
 * patterns that need shapes see the current graph.
 */
import type { Graph, Model, Node } from '../ir/graph.js';
import { isOnnxDomain } from '../ir/graph.js';
import { assertValid } from '../ir/verify.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import type { OpRegistry } from '../ops/registry.js';
import type { OptimizeOptions, Pass, PassContext, PatternPass } from './pass.js';

export interface PassStat {
  name: string;
  rewrites: number;
  ms: number;
}

/** Rounds after which the driver stops even if passes keep rewriting (a safety net against ping-pong). */
const MAX_ROUNDS = 16;

function graphsOf(g: Graph): Graph[] {
  const out = [g];
  for (const n of g.nodes) for (const sg of n.subgraphs()) out.push(...graphsOf(sg));
  return out;
}

function runPattern(pass: PatternPass<unknown>, g: Graph, ctx: PassContext): number {
  const roots = new Set(pass.roots);
  const candidates: Node[] = g.nodes.filter((n) => roots.has(n.opType) && isOnnxDomain(n.domain));
  let count = 0;
  for (const node of candidates) {
    if (node.removed) continue;
    const found = pass.match(node, ctx);
    if (found === undefined) continue;
    pass.apply(found, ctx);
    count++;
  }
  return count;
}

export function runPass(pass: Pass, model: Model, ctx: PassContext): number {
  let count = 0;
  for (const g of graphsOf(model.graph)) {
    count += pass.kind === 'graph' ? pass.run(g, ctx) : runPattern(pass as PatternPass<unknown>, g, ctx);
  }
  return count;
}

export function makeContext(model: Model, options: OptimizeOptions = {}, registry: OpRegistry = defaultRegistry()): PassContext {
  return {
    model,
    registry,
    options: { level: options.level ?? 'basic', foldLimit: options.foldLimit ?? 64 * 1024 },
    opset: model.opset('') ?? 1,
    shapeValues: new Map(),
  };
}

/**
 * Runs `passes` in order, round after round, until a round changes nothing; then `final` once
 * (passes whose output the others do not understand, such as contrib-op lowering).
 */
export function runToFixedPoint(
  model: Model,
  passes: readonly Pass[],
  options: OptimizeOptions = {},
  final: readonly Pass[] = [],
): { stats: PassStat[]; rounds: number } {
  const ctx = makeContext(model, options);
  const enabled = (p: Pass): boolean => ((options.level ?? 'basic') === 'all' || p.level === 'basic') && !options.disable?.includes(p.name);
  const active = passes.filter(enabled);
  const finals = final.filter(enabled);
  const stats = new Map<string, PassStat>([...active, ...finals].map((p) => [p.name, { name: p.name, rewrites: 0, ms: 0 }]));
  const apply = (pass: Pass): number => {
    const t0 = performance.now();
    const n = runPass(pass, model, ctx);
    const s = stats.get(pass.name) as PassStat;
    s.ms += performance.now() - t0;
    s.rewrites += n;
    if (n > 0 && options.verifyEachPass) assertValid(model, `after pass ${pass.name}`, { registry: ctx.registry });
    if (n > 0) options.afterPass?.(pass.name, model);
    return n;
  };
  let rounds = 0;
  while (rounds < MAX_ROUNDS) {
    rounds++;
    ctx.shapeValues = inferShapes(model, { registry: ctx.registry }).shapeValues;
    let changed = 0;
    for (const pass of active) changed += apply(pass);
    if (changed === 0) break;
  }
  if (finals.length > 0) {
    ctx.shapeValues = inferShapes(model, { registry: ctx.registry }).shapeValues;
    for (const pass of finals) apply(pass);
  }
  return { stats: [...stats.values()], rounds };
}
