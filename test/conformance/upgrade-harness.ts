/**
 * The ONNX backend tests as a check of the opset upgrader (src/ir/upgrade/): each model below
 * the target opset is read, upgraded, checked by the verifier, written, run on onnxruntime-node
 * and compared with the suite's expected outputs, like harness.ts's runCase does for the model
 * as written. A test that cannot be judged is skipped with a reason (onnxruntime cannot run the
 * original either, I/O its JS API cannot pass, a node the upgrader refuses); anything else is a
 * pass or a failure, and a failure is a wrong upgrade.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMobilizeError } from '../../src/errors.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import type { Model } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { upgradeOpset } from '../../src/ir/upgrade/index.js';
import { verifyModel } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import type { Session } from '../../src/runtime/backend.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { ortSupportsType } from '../../src/runtime/ort.js';
import {
  Adapter,
  compareTensors,
  dataSets,
  listCases,
  loadValues,
  needsAdapter,
  type Outcome,
  REFERENCE_DEVIATIONS,
  SUITES,
  shortReason,
  TESTDATA,
  type TestValue,
} from './harness.js';

/** An opset to upgrade to, or 'next': the smallest opset ≥ 13 above the model's own. */
export type UpgradeTarget = number | 'next';

export type UpgradeOutcome = Outcome | { status: 'n/a'; reason: string };

export interface UpgradeResult {
  suite: string;
  name: string;
  from: number | undefined;
  to: number | undefined;
  outcome: UpgradeOutcome;
}

/** A model ready to run on one data set: non-tensor I/O wrapped by harness.ts's Adapter. */
interface Prepared {
  bytes: Uint8Array;
  feeds: Record<string, Tensor>;
  expected: Array<[string, Tensor]>;
}

function prepare(
  bytes: Uint8Array,
  adapted: boolean,
  inputs: Array<TestValue | undefined>,
  expected: Array<TestValue | undefined>,
): Prepared {
  const m = readOnnx(bytes);
  const g = m.graph;
  const adapter = new Adapter(g);
  g.inputs
    .filter((v) => !v.initializer)
    .forEach((v, i) => {
      const value = inputs[i];
      if (value) adapter.input(v, value);
    });
  [...g.outputs].forEach((v, i) => {
    const value = expected[i];
    if (value) adapter.output(v, value);
  });
  return { bytes: adapted ? writeOnnx(m).model : bytes, feeds: adapter.feeds, expected: adapter.expected };
}

/** Runs the prepared original on onnxruntime: its outputs, or why it could not. */
async function runOriginalOrt(p: Prepared): Promise<Record<string, Tensor> | { error: string }> {
  let session: Session;
  try {
    session = await nodeBackend().createSession(p.bytes);
  } catch (e) {
    return { error: `onnxruntime cannot load the original model: ${shortReason(e)}` };
  }
  try {
    return await session.run(p.feeds);
  } catch (e) {
    return { error: `onnxruntime fails on the original model at run time: ${shortReason(e)}` };
  } finally {
    await session.release();
  }
}

const RANDOM_OPS = ['Bernoulli', 'Multinomial', 'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike'];

/** An op of the model whose outputs are random (Dropout counts when given a training_mode input). */
function randomOp(model: Model): string | undefined {
  for (const n of model.graph.allNodes()) {
    if (RANDOM_OPS.includes(n.opType) || (n.opType === 'Dropout' && n.input(2))) return n.opType;
  }
  return undefined;
}

/** Upgrades one test model to `target` and runs it against the expected outputs. */
export async function runUpgradeCase(suite: string, name: string, target: UpgradeTarget): Promise<UpgradeResult> {
  const dir = join(TESTDATA, suite, name);
  const original = readFileSync(join(dir, 'model.onnx'));
  const model = readOnnx(original, { source: `${suite}/${name}` });
  const from = model.opset('');
  const result = (to: number | undefined, outcome: UpgradeOutcome): UpgradeResult => ({ suite, name, from, to, outcome });
  if (from === undefined) return result(undefined, { status: 'n/a', reason: 'imports no default-domain opset' });
  const to = target === 'next' ? Math.max(13, from + 1) : target;
  if (from >= to) return result(to, { status: 'n/a', reason: `already at opset ${from}` });
  return result(to, await upgradeAndRun(dir, name, original, model, from, to));
}

async function upgradeAndRun(dir: string, name: string, original: Uint8Array, model: Model, from: number, to: number): Promise<Outcome> {
  try {
    upgradeOpset(model, to);
  } catch (e) {
    if (isMobilizeError(e)) return { status: 'skip', reason: `the upgrader refuses: ${e.message}` };
    return { status: 'fail', reason: `the upgrader crashed: ${(e as Error).stack ?? e}` };
  }
  const issues = verifyModel(model, { registry: defaultRegistry() });
  if (issues.length > 0) return { status: 'fail', reason: `invalid after upgrading: ${issues[0].where}: ${issues[0].message}` };
  if (model.opset('') !== to) return { status: 'fail', reason: `opset import is ${model.opset('')}, expected ${to}` };
  let written: Uint8Array;
  try {
    written = writeOnnx(model).model;
  } catch (e) {
    return { status: 'fail', reason: `write: ${(e as Error).message}` };
  }
  const g = model.graph;
  const realInputs = g.inputs.filter((v) => !v.initializer);
  const outputs = [...g.outputs];
  for (const v of [...realInputs, ...outputs]) {
    const t = v.type;
    if (t?.kind === 'map') return { status: 'skip', reason: `onnxruntime's JS API cannot pass map values (${v.name})` };
    if (t?.kind === 'tensor' && t.dtype && t.dtype !== 'bfloat16' && !ortSupportsType(t.dtype)) {
      return { status: 'skip', reason: `onnxruntime's JS API cannot pass ${t.dtype} tensors (${v.name})` };
    }
  }
  const adapted = [...realInputs, ...outputs].some((v) => needsAdapter(v.type));
  for (const set of dataSets(dir)) {
    const inputs = loadValues(set, 'input', realInputs);
    const expected = loadValues(set, 'output', outputs);
    const upgraded = prepare(written, adapted, inputs, expected);
    // onnxruntime on the original judges what the runtime itself cannot do. Below opset 7 it
    // refuses the original, which is what the upgrade is for: no baseline there.
    let ran: Promise<Record<string, Tensor> | { error: string }> | undefined;
    const baseline = () => (from < 7 ? undefined : (ran ??= runOriginalOrt(prepare(original, adapted, inputs, expected))));
    const excuse = async (): Promise<string | undefined> => {
      const r = await baseline();
      return r && 'error' in r ? (r.error as string) : undefined;
    };
    let session: Session;
    try {
      session = await nodeBackend().createSession(upgraded.bytes);
    } catch (e) {
      const why = await excuse();
      if (why) return { status: 'skip', reason: why };
      return { status: 'fail', reason: `onnxruntime cannot load the upgraded model: ${shortReason(e)}` };
    }
    try {
      let results: Record<string, Tensor>;
      try {
        results = await session.run(upgraded.feeds);
      } catch (e) {
        const why = await excuse();
        if (why) return { status: 'skip', reason: why };
        return { status: 'fail', reason: `onnxruntime fails on the upgraded model at run time: ${shortReason(e)}` };
      }
      for (const [out, exp] of upgraded.expected) {
        const got = results[out];
        if (!got) return { status: 'fail', reason: `output ${out} missing` };
        const diff = compareTensors(exp, got);
        if (!diff) continue;
        const random = randomOp(model);
        if (random) return { status: 'skip', reason: `the model draws random numbers (${random}), so its outputs vary from run to run` };
        // onnxruntime giving the original the same wrong answer is the runtime's deviation, not ours.
        const theirs = await baseline();
        const theirOut = theirs && !('error' in theirs) ? (theirs[out] as Tensor | undefined) : undefined;
        if (theirs && !('error' in theirs) && (!theirOut || compareTensors(exp, theirOut))) {
          return { status: 'skip', reason: `onnxruntime's result on the original differs from the reference too (${out}: ${diff})` };
        }
        const deviation = REFERENCE_DEVIATIONS[name];
        if (deviation) return { status: 'skip', reason: `the reference output is off the spec: ${deviation}` };
        return { status: 'fail', reason: `output ${out}: ${diff}` };
      }
    } finally {
      await session.release();
    }
  }
  return { status: 'pass' };
}

export async function runUpgradeSuite(suite: string, target: UpgradeTarget, filter?: (name: string) => boolean): Promise<UpgradeResult[]> {
  const out: UpgradeResult[] = [];
  for (const name of listCases(suite)) {
    if (filter && !filter(name)) continue;
    out.push(await runUpgradeCase(suite, name, target));
  }
  return out;
}

export async function runUpgradeAll(target: UpgradeTarget): Promise<UpgradeResult[]> {
  const out: UpgradeResult[] = [];
  for (const suite of SUITES) out.push(...(await runUpgradeSuite(suite, target)));
  return out;
}

export interface UpgradeSummary {
  run: number;
  passed: number;
  failed: number;
  skipped: number;
  notApplicable: number;
  /** Skip reasons, grouped by their first words, with counts. */
  skipReasons: Record<string, number>;
}

export function summarize(results: UpgradeResult[]): UpgradeSummary {
  const s: UpgradeSummary = { run: 0, passed: 0, failed: 0, skipped: 0, notApplicable: 0, skipReasons: {} };
  for (const r of results) {
    const o = r.outcome;
    if (o.status === 'n/a') {
      s.notApplicable++;
      continue;
    }
    s.run++;
    if (o.status === 'pass') s.passed++;
    if (o.status === 'fail') s.failed++;
    if (o.status === 'skip') {
      s.skipped++;
      const key = skipKind(o.reason);
      s.skipReasons[key] = (s.skipReasons[key] ?? 0) + 1;
    }
  }
  return s;
}

/** A skip reason reduced to its kind, for counting. */
function skipKind(reason: string): string {
  if (reason.startsWith('the upgrader refuses')) return 'the upgrader refuses a node';
  if (reason.startsWith("onnxruntime's JS API")) return "onnxruntime's JS API cannot pass the I/O";
  if (reason.startsWith('onnxruntime cannot load the original')) return 'onnxruntime cannot load the original either';
  if (reason.startsWith('onnxruntime fails on the original')) return 'onnxruntime cannot run the original either';
  if (reason.startsWith("onnxruntime's result on the original")) return "onnxruntime's result on the original is off too";
  if (reason.startsWith('the reference output is off')) return 'the reference output is off the spec';
  if (reason.startsWith('the model draws random numbers')) return 'the model draws random numbers';
  return reason;
}
