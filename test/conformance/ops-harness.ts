/**
 * The ONNX node tests as a check of our own op knowledge:
 * - shape inference: the test model's declared output types are erased, inference runs, and the
 *   inferred dtype and shape must equal those of the expected output tensors;
 * - reference kernels: tests whose every node has a kernel run on the reference interpreter and
 *   must match the expected outputs with the suite's tolerance.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOnnx, readTensorProto } from '../../src/formats/onnx/read.js';
import { isInteger } from '../../src/ir/dtype.js';
import type { Model, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { formatShape, formatType, type ValueType } from '../../src/ir/types.js';
import { inferShapes } from '../../src/ops/infer.js';
import { Interpreter } from '../../src/runtime/reference.js';
import { compareTensors, REFERENCE_DEVIATIONS, TESTDATA, type TestValue, testValue } from './harness.js';

export type Check = { status: 'pass' } | { status: 'fail'; reason: string } | { status: 'skip'; reason: string };

function firstDataSet(dir: string): string | undefined {
  const sets = readdirSync(dir)
    .filter((d) => d.startsWith('test_data_set_'))
    .sort();
  return sets.length > 0 ? join(dir, sets[0]) : undefined;
}

function loadModel(dir: string): Model {
  return readOnnx(readFileSync(join(dir, 'model.onnx')), { source: dir });
}

/** ONNX 1.12 stores bfloat16 test tensors as their uint16 bit patterns; view them as declared. */
function asDeclared(t: Tensor, declared: ValueType | undefined): Tensor {
  if (t.dtype === 'uint16' && declared?.kind === 'tensor' && declared.dtype === 'bfloat16')
    return Tensor.fromBytes('bfloat16', t.dims, t.bytes);
  return t;
}

function expectedOutputs(set: string, outputs: Value[]): Array<Tensor | undefined> {
  return outputs.map((v, i) => {
    const f = join(set, `output_${i}.pb`);
    if (!existsSync(f)) return undefined;
    try {
      return asDeclared(readTensorProto(readFileSync(f)), v.type);
    } catch {
      return undefined;
    }
  });
}

function readInputs(set: string, inputs: Value[]): Tensor[] {
  return inputs.map((v, i) => asDeclared(readTensorProto(readFileSync(join(set, `input_${i}.pb`))), v.type));
}

/**
 * Small integer, bool and scalar inputs (shapes, axes, indices, Range bounds) and short vectors
 * (Resize scales) become constants: in real models they are constants, and shapes that depend
 * on them can only be inferred then.
 */
function constantizeSmallInputs(model: Model, set: string): void {
  const g = model.graph;
  const real = g.inputs.filter((v) => !v.initializer);
  const tensorInput = (v: Value): boolean => !v.type || v.type.kind === 'tensor';
  const values = real.map((v, i) =>
    tensorInput(v) ? asDeclared(readTensorProto(readFileSync(join(set, `input_${i}.pb`))), v.type) : undefined,
  );
  real.forEach((v, i) => {
    const t = values[i];
    if (!t) return;
    const shapeLike = isInteger(t.dtype) || t.dtype === 'bool' || t.rank === 0 || (t.rank === 1 && t.size <= 8);
    if (t.size > 64 || !shapeLike) return;
    v.initializer = t;
    g.initializers.push(v);
    g.inputs.splice(g.inputs.indexOf(v), 1);
  });
}

/** Erases every non-input type, infers, and compares with the expected output tensors. */
export function checkShapes(suite: string, name: string): Check {
  const dir = join(TESTDATA, suite, name);
  const model = loadModel(dir);
  const g = model.graph;
  const set = firstDataSet(dir);
  if (!set) return { status: 'skip', reason: 'no test data' };
  if (g.outputs.some((v) => v.type && v.type.kind !== 'tensor')) return checkContainerShapes(model, set);
  const expected = expectedOutputs(set, g.outputs);
  constantizeSmallInputs(model, set);
  for (const n of g.allNodes()) for (const v of n.outputs) if (v) v.type = undefined;
  // Inputs fed from test data have static shapes in the model already.
  const report = inferShapes(model);
  if (report.unknownOps.size > 0) return { status: 'skip', reason: `no shape rule for ${[...report.unknownOps.keys()].join(', ')}` };
  if (report.problems.length > 0) return { status: 'fail', reason: report.problems.map((p) => `${p.node}: ${p.message}`).join('; ') };
  for (let i = 0; i < g.outputs.length; i++) {
    const v = g.outputs[i];
    const e = expected[i];
    if (!e) continue;
    const t = v.type;
    if (t?.kind !== 'tensor') return { status: 'fail', reason: `output ${v.name}: nothing inferred` };
    if (t.dtype !== e.dtype) return { status: 'fail', reason: `output ${v.name}: inferred ${t.dtype}, expected ${e.dtype}` };
    const shape = t.shape;
    // A fresh symbol (`unique__3`) is the right answer for a size that depends on the data.
    const ok =
      shape && shape.length === e.dims.length && shape.every((d, k) => d === e.dims[k] || (typeof d === 'string' && /__\d+$/.test(d)));
    if (!ok) return { status: 'fail', reason: `output ${v.name}: inferred ${formatShape(shape)}, expected [${e.dims.join(',')}]` };
  }
  return { status: 'pass' };
}

/**
 * Tests with sequence or optional outputs: the inferred type must be of the right kind, and an
 * inferred element type must fit every element of the expected value (dtype, and dims where the
 * inferred dim is a number).
 */
function checkContainerShapes(model: Model, set: string): Check {
  const g = model.graph;
  const declared = g.outputs.map((v) => v.type);
  const expected = g.outputs.map((v, i) => {
    const f = join(set, `output_${i}.pb`);
    return existsSync(f) ? testValue(readFileSync(f), v.type, f) : undefined;
  });
  for (const n of g.allNodes()) for (const v of n.outputs) if (v) v.type = undefined;
  const report = inferShapes(model);
  if (report.unknownOps.size > 0) return { status: 'skip', reason: `no shape rule for ${[...report.unknownOps.keys()].join(', ')}` };
  if (report.problems.length > 0) return { status: 'fail', reason: report.problems.map((p) => `${p.node}: ${p.message}`).join('; ') };
  for (let i = 0; i < g.outputs.length; i++) {
    const e = expected[i];
    const why = e && fits(g.outputs[i].type, e, declared[i]);
    if (why) return { status: 'fail', reason: `output ${g.outputs[i].name}: ${why}` };
  }
  return { status: 'pass' };
}

/** Why an inferred type does not describe a test value, or undefined when it does. */
function fits(t: ValueType | undefined, value: TestValue, declared: ValueType | undefined): string | undefined {
  if (!t) return `nothing inferred (declared ${formatType(declared)})`;
  if (value.kind === 'tensor') {
    if (t.kind !== 'tensor') return `inferred ${formatType(t)} for a tensor`;
    if (t.dtype && t.dtype !== value.tensor.dtype) return `inferred ${formatType(t)}, got ${value.tensor.dtype}`;
    if (t.shape && (t.shape.length !== value.tensor.rank || t.shape.some((d, k) => typeof d === 'number' && d !== value.tensor.dims[k]))) {
      return `inferred ${formatType(t)}, got [${value.tensor.dims.join(',')}]`;
    }
    return undefined;
  }
  if (t.kind !== value.kind) return `inferred ${formatType(t)} for a ${value.kind}`;
  if (value.kind === 'sequence' && t.kind === 'sequence') {
    for (const item of value.items) {
      const why = t.elem && fits(t.elem, item, undefined);
      if (why) return `element: ${why}`;
    }
  }
  if (value.kind === 'optional' && t.kind === 'optional' && value.value && t.elem) return fits(t.elem, value.value, undefined);
  return undefined;
}

/** Runs a test on the reference interpreter, when every op has a kernel. */
export function checkKernels(suite: string, name: string): Check {
  const dir = join(TESTDATA, suite, name);
  const model = loadModel(dir);
  const g = model.graph;
  const interp = new Interpreter(model);
  const missing = interp.missingKernels(g);
  if (missing.length > 0) return { status: 'skip', reason: `no kernel for ${missing.join(', ')}` };
  if ([...g.inputs, ...g.outputs].some((v) => v.type && v.type.kind !== 'tensor'))
    return { status: 'skip', reason: 'non-tensor inputs or outputs' };
  for (const set of readdirSync(dir).filter((d) => d.startsWith('test_data_set_'))) {
    const path = join(dir, set);
    const realInputs = g.inputs.filter((v) => !v.initializer);
    const values = readInputs(path, realInputs);
    const feeds = new Map(realInputs.map((v, i) => [v, values[i]]));
    const expected = expectedOutputs(path, g.outputs);
    let outs: Tensor[];
    try {
      outs = interp.runGraph(
        g,
        g.inputs.map((v) => feeds.get(v)),
      );
    } catch (e) {
      return { status: 'fail', reason: (e as Error).message };
    }
    for (let i = 0; i < outs.length; i++) {
      const e = expected[i];
      if (!e) continue;
      const diff = compareTensors(e, outs[i]);
      const deviation = REFERENCE_DEVIATIONS[name];
      if (diff && deviation) return { status: 'skip', reason: `the reference output is off the spec: ${deviation}` };
      if (diff) return { status: 'fail', reason: `output ${g.outputs[i].name}: ${diff}` };
    }
  }
  return { status: 'pass' };
}
