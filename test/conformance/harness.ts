/**
 * The ONNX backend test suite (Debian's libonnx-testdata, ONNX 1.12) as a conformance check of
 * our ONNX reader and writer: each model is read into the IR, written back, run on
 * onnxruntime-node, and its outputs compared with the suite's expected outputs. Tests that
 * cannot be judged that way are skipped with a written reason; every other outcome is a pass or
 * a failure.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOnnx, readTensorProto, tensorFromProto } from '../../src/formats/onnx/read.js';
import { onnx } from '../../src/formats/onnx/schema.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { dtypeCode } from '../../src/ir/dtype.js';
import type { Graph, Model, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType, type ValueType } from '../../src/ir/types.js';
import type { Session } from '../../src/runtime/backend.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { ortSupportsType } from '../../src/runtime/ort.js';

/** Debian's libonnx-testdata; MOBILIZE_ONNX_TESTDATA points elsewhere (e.g. onnx/backend/test/data of a pip-installed onnx). */
export const TESTDATA = process.env.MOBILIZE_ONNX_TESTDATA ?? '/usr/share/libonnx-testdata/data';
export const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'] as const;

/**
 * Tests whose expected output is itself off the ONNX specification (as later ONNX releases
 * corrected). A mismatch on these is reported as a skip with this reason; a load or run error
 * is still a failure.
 */
export const REFERENCE_DEVIATIONS: Readonly<Record<string, string>> = {
  test_cast_FLOAT_to_BFLOAT16:
    "ONNX 1.12's expected output truncates float to bfloat16; the ONNX spec since 1.13, onnxruntime and mobilize round to nearest even",
  test_castlike_FLOAT_to_BFLOAT16:
    "ONNX 1.12's expected output truncates float to bfloat16; the ONNX spec since 1.13, onnxruntime and mobilize round to nearest even",
  test_adam_multiple:
    "ONNX 1.12's generator computed the expected output with epsilon=1e-2 but did not set that attribute on the node, which therefore runs with the default 1e-6 (fixed in later ONNX releases)",
  test_castlike_FLOAT_to_BFLOAT16_expanded:
    "ONNX 1.12's expected output truncates float to bfloat16; the ONNX spec since 1.13, onnxruntime and mobilize round to nearest even",
};

export type Outcome = { status: 'pass' } | { status: 'fail'; reason: string } | { status: 'skip'; reason: string };

export interface CaseResult {
  suite: string;
  name: string;
  outcome: Outcome;
}

export function testDataAvailable(): boolean {
  return existsSync(join(TESTDATA, 'node'));
}

export function listCases(suite: string): string[] {
  const dir = join(TESTDATA, suite);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'model.onnx')))
    .sort();
}

const RTOL = 1e-3;
const ATOL = 1e-7;

/** Compares like numpy.testing.assert_allclose(expected, actual, rtol=1e-3, atol=1e-7); NaNs must match. */
export function compareTensors(expected: Tensor, actual: Tensor): string | undefined {
  if (expected.dtype !== actual.dtype) return `dtype ${actual.dtype}, expected ${expected.dtype}`;
  if (expected.dims.join(',') !== actual.dims.join(',')) return `shape [${actual.dims}], expected [${expected.dims}]`;
  if (expected.dtype === 'string') {
    const a = actual.strings;
    const e = expected.strings;
    const i = e.findIndex((s, k) => s !== a[k]);
    return i < 0 ? undefined : `element ${i} is "${a[i]}", expected "${e[i]}"`;
  }
  const e = expected.toNumbers();
  const a = actual.toNumbers();
  for (let i = 0; i < e.length; i++) {
    const x = e[i];
    const y = a[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return `element ${i} is ${y}, expected ${x}`;
      continue;
    }
    if (x === y) continue;
    if (!(Math.abs(x - y) <= ATOL + RTOL * Math.abs(x))) return `element ${i} is ${y}, expected ${x}`;
  }
  return undefined;
}

export function dataSets(dir: string): string[] {
  return readdirSync(dir)
    .filter((d) => d.startsWith('test_data_set_'))
    .sort()
    .map((d) => join(dir, d));
}

/** A test value as stored in the suite's .pb files. */
export type TestValue =
  | { kind: 'tensor'; tensor: Tensor }
  | { kind: 'sequence'; items: TestValue[]; elem: ValueType | undefined }
  | { kind: 'optional'; value: TestValue | undefined; elem: ValueType | undefined };

export function testValue(bytes: Uint8Array, type: ValueType | undefined, source: string): TestValue {
  if (type?.kind === 'sequence') {
    const p = onnx.SequenceProto.decode(bytes);
    return { kind: 'sequence', items: sequenceItems(p, type.elem, source), elem: type.elem };
  }
  if (type?.kind === 'optional') {
    const p = onnx.OptionalProto.decode(bytes);
    let value: TestValue | undefined;
    if (p.tensorValue) value = { kind: 'tensor', tensor: tensorFromProto(p.tensorValue, { source }) };
    else if (p.sequenceValue) {
      const elem = type.elem?.kind === 'sequence' ? type.elem.elem : undefined;
      value = { kind: 'sequence', items: sequenceItems(p.sequenceValue, elem, source), elem };
    }
    return { kind: 'optional', value, elem: type.elem };
  }
  return { kind: 'tensor', tensor: readTensorProto(bytes, { source }) };
}

function sequenceItems(p: onnx.SequenceProto.$Properties, elem: ValueType | undefined, source: string): TestValue[] {
  return (p.tensorValues ?? [])
    .map((t) => ({ kind: 'tensor', tensor: tensorFromProto(t, { source }) }) as TestValue)
    .concat(
      (p.sequenceValues ?? []).map((s) => ({
        kind: 'sequence',
        items: sequenceItems(s, elem?.kind === 'sequence' ? elem.elem : undefined, source),
        elem: elem?.kind === 'sequence' ? elem.elem : undefined,
      })),
    );
}

export function loadValues(dir: string, prefix: 'input' | 'output', values: Value[]): Array<TestValue | undefined> {
  return values.map((v, i) => {
    const f = join(dir, `${prefix}_${i}.pb`);
    return existsSync(f) ? testValue(readFileSync(f), v.type, f) : undefined;
  });
}

export function needsAdapter(t: ValueType | undefined): boolean {
  return t !== undefined && (t.kind !== 'tensor' || t.dtype === 'bfloat16');
}

/**
 * onnxruntime's JS API passes only tensors of its own element types. Sequence, optional and
 * bfloat16 values cross it through an adapter wrapped around the graph under test: tensor inputs
 * feed SequenceConstruct / Optional / Cast nodes, and SequenceAt / OptionalGetElement / Cast nodes
 * turn the graph's outputs back into tensors. The graph itself is left as written.
 */
export class Adapter {
  readonly feeds: Record<string, Tensor> = {};
  readonly expected: Array<[string, Tensor]> = [];
  private readonly g: Graph;

  constructor(g: Graph) {
    this.g = g;
  }

  input(v: Value, value: TestValue): void {
    if (value.kind === 'tensor' && !needsAdapter(v.type)) {
      this.feeds[v.name] = value.tensor;
      return;
    }
    const made = this.build(value, v.name, v.type);
    this.g.inputs.splice(this.g.inputs.indexOf(v), 1);
    this.g.replaceAllUses(v, made);
  }

  private build(value: TestValue, base: string, type: ValueType | undefined): Value {
    const g = this.g;
    const first = g.nodes[0];
    if (value.kind === 'tensor') {
      let t = value.tensor;
      // ONNX 1.12 stores bfloat16 test inputs as their uint16 bit patterns.
      if (t.dtype === 'uint16' && type?.kind === 'tensor' && type.dtype === 'bfloat16') t = Tensor.fromBytes('bfloat16', t.dims, t.bytes);
      if (t.dtype === 'bfloat16') {
        const f = g.addInput(`${base}_f32`, tensorType('float32', [...t.dims]));
        this.feeds[f.name] = Tensor.from('float32', t.dims, Float32Array.from(t.toNumbers()));
        return g.addNode('Cast', [f], 1, { attrs: [['to', { type: 'int', value: 16 }]], before: first }).output();
      }
      const v = g.addInput(`${base}_t`, tensorType(t.dtype, [...t.dims]));
      this.feeds[v.name] = t;
      return v;
    }
    if (value.kind === 'sequence') {
      const elem = value.elem ?? (type?.kind === 'sequence' ? type.elem : undefined);
      if (value.items.length === 0) {
        const dtype = elem?.kind === 'tensor' && elem.dtype ? elem.dtype : 'float32';
        return g.addNode('SequenceEmpty', [], 1, { attrs: [['dtype', { type: 'int', value: dtypeCode(dtype) }]], before: first }).output();
      }
      const items = value.items.map((item, i) => this.build(item, `${base}_${i}`, elem));
      return g.addNode('SequenceConstruct', items, 1, { before: first }).output();
    }
    const elem = value.elem ?? (type?.kind === 'optional' ? type.elem : undefined);
    if (!value.value) {
      return g
        .addNode('Optional', [], 1, { attrs: [['type', { type: 'type_proto', value: elem ?? tensorType('float32') }]], before: first })
        .output();
    }
    return g.addNode('Optional', [this.build(value.value, `${base}_v`, elem)], 1, { before: first }).output();
  }

  output(v: Value, value: TestValue): void {
    if (value.kind === 'tensor' && !needsAdapter(v.type)) {
      this.expected.push([v.name, value.tensor]);
      return;
    }
    this.g.outputs.splice(this.g.outputs.indexOf(v), 1);
    this.unpack(v, value, v.name, v.type);
  }

  private unpack(v: Value, value: TestValue, base: string, type: ValueType | undefined): void {
    const g = this.g;
    const expose = (x: Value, name: string, expected: Tensor): void => {
      const id = g.addNode('Identity', [x], [g.freshName(name)]);
      g.outputs.push(id.output());
      this.expected.push([id.output().name, expected]);
    };
    if (value.kind === 'tensor') {
      let t = value.tensor;
      if (t.dtype === 'uint16' && type?.kind === 'tensor' && type.dtype === 'bfloat16') t = Tensor.fromBytes('bfloat16', t.dims, t.bytes);
      if (t.dtype === 'bfloat16') {
        const cast = g.addNode('Cast', [v], 1, { attrs: [['to', { type: 'int', value: 1 }]] });
        expose(cast.output(), `${base}_f32`, Tensor.from('float32', t.dims, Float32Array.from(t.toNumbers())));
      } else {
        expose(v, base, value.tensor);
      }
      return;
    }
    if (value.kind === 'sequence') {
      const len = g.addNode('SequenceLength', [v], 1);
      expose(len.output(), `${base}_length`, Tensor.scalar('int64', BigInt(value.items.length)));
      value.items.forEach((item, i) => {
        const index = g.addInitializer(`${base}_index_${i}`, Tensor.scalar('int64', BigInt(i)));
        const at = g.addNode('SequenceAt', [v, index], 1);
        this.unpack(at.output(), item, `${base}_${i}`, type?.kind === 'sequence' ? type.elem : undefined);
      });
      return;
    }
    const has = g.addNode('OptionalHasElement', [v], 1);
    expose(has.output(), `${base}_has`, Tensor.from('bool', [], [value.value ? 1 : 0]));
    if (value.value) {
      const elem = type?.kind === 'optional' ? type.elem : undefined;
      this.unpack(g.addNode('OptionalGetElement', [v], 1).output(), value.value, `${base}_v`, elem);
    }
  }
}

/** Runs one test case. */
export async function runCase(suite: string, name: string): Promise<Outcome> {
  const dir = join(TESTDATA, suite, name);
  const original = readFileSync(join(dir, 'model.onnx'));
  let model: Model;
  try {
    model = readOnnx(original, { source: `${suite}/${name}` });
  } catch (e) {
    return { status: 'fail', reason: `read: ${(e as Error).message}` };
  }
  let written: Uint8Array;
  let roundTripped: Model;
  try {
    written = writeOnnx(model).model;
    roundTripped = readOnnx(written, { source: 'written' });
  } catch (e) {
    return { status: 'fail', reason: `write: ${(e as Error).message}` };
  }
  const g = roundTripped.graph;
  const realInputs = g.inputs.filter((v) => !v.initializer);
  const outputs = [...g.outputs];
  for (const v of [...realInputs, ...outputs]) {
    const t = v.type;
    if (t && t.kind === 'map') return { status: 'skip', reason: `onnxruntime's JS API cannot pass map values (${v.name})` };
    if (t?.kind === 'tensor' && t.dtype && t.dtype !== 'bfloat16' && !ortSupportsType(t.dtype)) {
      return { status: 'skip', reason: `onnxruntime's JS API cannot pass ${t.dtype} tensors (${v.name})` };
    }
  }
  const adapted = [...realInputs, ...outputs].some((v) => needsAdapter(v.type));
  const backend = nodeBackend();
  for (const set of dataSets(dir)) {
    const inputs = loadValues(set, 'input', realInputs);
    const expected = loadValues(set, 'output', outputs);
    // Each data set gets a fresh copy of the round-tripped model for its adapter.
    const m = adapted ? readOnnx(written) : roundTripped;
    const mg = m.graph;
    const adapter = new Adapter(mg);
    const ins = mg.inputs.filter((v) => !v.initializer);
    const outs = [...mg.outputs];
    ins.forEach((v, i) => {
      const value = inputs[i];
      if (value) adapter.input(v, value);
    });
    outs.forEach((v, i) => {
      const value = expected[i];
      if (value) adapter.output(v, value);
    });
    let session: Session;
    try {
      session = await backend.createSession(adapted ? writeOnnx(m).model : written);
    } catch (e) {
      if (adapted) return { status: 'skip', reason: `onnxruntime cannot load the model: ${shortReason(e)}` };
      // Judge the runtime on the untouched file: if it cannot load that either, it is not our fault.
      try {
        const s = await backend.createSession(new Uint8Array(original));
        await s.release();
      } catch (e2) {
        return { status: 'skip', reason: `onnxruntime cannot load the original model: ${shortReason(e2)}` };
      }
      return { status: 'fail', reason: `onnxruntime loads the original but not ours: ${(e as Error).message}` };
    }
    try {
      let results: Record<string, Tensor>;
      try {
        results = await session.run(adapter.feeds);
      } catch (e) {
        return { status: 'skip', reason: `onnxruntime fails at run time: ${shortReason(e)}` };
      }
      for (const [out, exp] of adapter.expected) {
        const got = results[out];
        if (!got) return { status: 'fail', reason: `output ${out} missing` };
        const diff = compareTensors(exp, got);
        if (!diff) continue;
        if (!adapted) {
          const originalDiff = await runOriginal(original, adapter.feeds, out, exp);
          if (originalDiff === 'same') {
            return { status: 'skip', reason: `onnxruntime's own result differs from the reference (${out}: ${diff})` };
          }
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

/** 'same' when onnxruntime gives the original model the same wrong answer, i.e. the runtime deviates. */
async function runOriginal(
  original: Uint8Array,
  feeds: Record<string, Tensor>,
  output: string,
  expected: Tensor,
): Promise<string | undefined> {
  try {
    const s = await nodeBackend().createSession(new Uint8Array(original));
    const r = await s.run(feeds);
    await s.release();
    return compareTensors(expected, r[output]) ? 'same' : 'differs';
  } catch {
    return 'same';
  }
}

export function shortReason(e: unknown): string {
  const msg = (e as Error).message ?? String(e);
  return msg
    .replace(/^onnxruntime (cannot load the model|failed to run the model): /, '')
    .replace(/\[ONNXRuntimeError\] : \d+ : /, '')
    .slice(0, 200);
}

export async function runSuite(suite: string, filter?: (name: string) => boolean): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const name of listCases(suite)) {
    if (filter && !filter(name)) continue;
    out.push({ suite, name, outcome: await runCase(suite, name) });
  }
  return out;
}
