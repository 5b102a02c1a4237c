/**
 * TFLite import benchmark: each .tflite file is read (checked codec), imported into the IR and run
 * on onnxruntime-node; the real TFLite interpreter (WASM) runs the same seeded input, and the
 * table records the largest difference (absolute, and relative to the largest output value).
 * The IR is also exported back to TFLite (tflite → IR → tflite) and that file run on the
 * interpreter. Files the interpreter itself refuses get a reference it accepts, made with the
 * codec: person_detect's biases carry quantized_dimension 3 on rank-1 tensors (set to 0 for
 * the reference), and selfie_segmentation's custom Convolution2DTransposeBias becomes its
 * builtin twin TRANSPOSE_CONV.
 *
 *   npx tsx bench/tflite-import.ts [file.tflite ...] [--write docs/benchmarks.md]
 * Defaults to ../shared/models/*.tflite and the MediaPipe models in node_modules.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { exportTflite } from '../src/formats/tflite/export/index.js';
import { importTflite } from '../src/formats/tflite/import.js';
import { Builtin, TensorType, type TfliteModel } from '../src/formats/tflite/model.js';
import { readTflite } from '../src/formats/tflite/read.js';
import { writeTflite } from '../src/formats/tflite/write.js';
import { Tensor } from '../src/ir/tensor.js';
import { nodeBackend } from '../src/runtime/node.js';
import { loadTflite } from '../src/runtime/tflite.js';
import { updateSection } from './report.js';

const args = process.argv.slice(2);
const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
const files = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--write');
if (files.length === 0) {
  const shared = '../shared/models';
  try {
    for (const f of readdirSync(shared).sort()) if (f.endsWith('.tflite')) files.push(join(shared, f));
  } catch {
    // no shared models on this machine
  }
  for (const [pkg, names] of [
    ['face_detection', ['face_detection_short_range', 'face_detection_full_range', 'face_detection_full_range_sparse']],
    ['hands', ['hand_landmark_lite', 'hand_landmark_full']],
    ['selfie_segmentation', ['selfie_segmentation', 'selfie_segmentation_landscape']],
  ] as const) {
    for (const n of names) files.push(`node_modules/@mediapipe/${pkg}/${n}.tflite`);
  }
}

type Outputs = Record<string, Tensor>;

function feedsFor(m: TfliteModel): Record<string, Tensor> {
  const g = m.subgraphs[0];
  const feeds: Record<string, Tensor> = {};
  let seed = 12345;
  for (const i of g.inputs) {
    const t = g.tensors[i];
    const n = t.shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: n }, () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 31 - 1;
    });
    feeds[t.name] =
      t.type === TensorType.INT8
        ? Tensor.from(
            'int8',
            t.shape,
            Int8Array.from(x, (v) => Math.round(v * 127)),
          )
        : Tensor.from('float32', t.shape, x);
  }
  return feeds;
}

/** A variant the interpreter accepts when it refuses the original (see the header). */
function reference(m: TfliteModel): { model: TfliteModel; note: string } {
  const notes: string[] = [];
  for (const t of m.subgraphs[0].tensors) {
    if (t.quantization && t.shape.length === 1 && t.quantization.quantizedDimension !== 0) {
      t.quantization.quantizedDimension = 0;
      if (!notes.includes('rank-1 quantized_dimension set to 0')) notes.push('rank-1 quantized_dimension set to 0');
    }
  }
  const custom = m.operatorCodes.findIndex((c) => c.customCode === 'Convolution2DTransposeBias');
  if (custom >= 0) {
    const g = m.subgraphs[0];
    m.operatorCodes.push({ builtinCode: Builtin.TRANSPOSE_CONV, version: 3 });
    for (const op of g.operators) {
      if (op.opcodeIndex !== custom) continue;
      const raw = new DataView(op.customOptions!.buffer, op.customOptions!.byteOffset, 12);
      const out = g.tensors[op.outputs[0]];
      m.buffers.push(new Uint8Array(Int32Array.from(out.shape).buffer));
      g.tensors.push({ name: `${out.name}/output_shape`, shape: [4], type: TensorType.INT32, buffer: m.buffers.length - 1 });
      const [x, w, b] = op.inputs;
      op.opcodeIndex = m.operatorCodes.length - 1;
      op.inputs = [g.tensors.length - 1, w, x, b];
      op.customOptions = undefined;
      op.options = {
        type: 'TransposeConvOptions',
        fields: { padding: raw.getInt32(0, true) === 2 ? 1 : 0, stride_w: raw.getInt32(4, true), stride_h: raw.getInt32(8, true) },
      };
    }
    notes.push('Convolution2DTransposeBias run as TRANSPOSE_CONV');
  }
  return { model: m, note: notes.join('; ') };
}

async function interpret(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Outputs> {
  const r = await loadTflite(bytes);
  try {
    const byPosition: Record<string, Tensor> = {};
    r.inputs.forEach((info, k) => {
      byPosition[info.name] = feeds[info.name] ?? Object.values(feeds)[k];
    });
    const out = await r.run(byPosition);
    return Object.fromEntries(r.outputs.map((o, k) => [o.name, out[o.name] ?? Object.values(out)[k]]));
  } finally {
    r.dispose();
  }
}

function compare(a: Outputs, b: Outputs): { abs: number; rel: number } {
  let abs = 0;
  let rel = 0;
  const bv = Object.values(b);
  Object.values(a).forEach((t, k) => {
    const x = t.data as ArrayLike<number>;
    const y = bv[k].data as ArrayLike<number>;
    let d = 0;
    let s = 0;
    for (let i = 0; i < y.length; i++) {
      d = Math.max(d, Math.abs(x[i] - y[i]));
      s = Math.max(s, Math.abs(y[i]));
    }
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / Math.max(s, 1e-12));
  });
  return { abs, rel };
}

const fmt = (x: number) => (x === 0 ? '0' : x.toExponential(1));
const rows: string[] = [];
for (const path of files) {
  const name = basename(path);
  const bytes = new Uint8Array(readFileSync(path));
  let row: string;
  try {
    // Warm timings: the median of three reads and of three imports.
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[1];
    const timed = <T>(f: () => T): [T, number] => {
      const t = performance.now();
      const out = f();
      return [out, performance.now() - t];
    };
    const reads = [0, 1, 2].map(() => timed(() => readTflite(bytes, { source: name })));
    const tflite = reads[0][0];
    const readMs = median(reads.map((r) => r[1]));
    const imports = [0, 1, 2].map(() => timed(() => importTflite(tflite, { source: name })));
    const model = imports[0][0];
    const importMs = median(imports.map((r) => r[1]));
    const feeds = feedsFor(tflite);
    const session = await nodeBackend().createSession(model);
    const ours = await session.run(feeds);
    await session.release();
    const { model: refModel, note } = reference(readTflite(bytes));
    const refBytes = note ? writeTflite(refModel) : bytes;
    const ref = await interpret(refBytes, feeds);
    const err = compare(ours, ref);
    const ops = tflite.subgraphs[0].operators.length;
    let roundTrip: string;
    try {
      const int8 = tflite.subgraphs[0].tensors[tflite.subgraphs[0].inputs[0]].type === TensorType.INT8;
      const { tflite: back } = await exportTflite(model, int8 ? { precision: 'int8', ioType: 'int8' } : {});
      roundTrip = fmt(compare(await interpret(writeTflite(back), feeds), ref).rel);
    } catch (e) {
      roundTrip = `not exported: ${(e instanceof Error ? e.message : String(e)).replace(/^[^:]*: /, '').slice(0, 90)}`;
    }
    const quantized = tflite.subgraphs[0].tensors[tflite.subgraphs[0].inputs[0]].type === TensorType.INT8 ? ' (int8)' : '';
    row = `| ${name}${quantized} | ${ops} → ${model.graph.nodes.length} | ${readMs.toFixed(0)} / ${importMs.toFixed(0)} | ${fmt(err.abs)} | ${fmt(err.rel)} | ${roundTrip} | ${note || '—'} |`;
  } catch (e) {
    row = `| ${name} | — | — | — | — | — | refused: ${e instanceof Error ? e.message : String(e)} |`;
  }
  console.log(row);
  rows.push(row);
}

const body = [
  '| model | TFLite ops → IR nodes | read / import ms (warm, median of 3) | max abs error vs interpreter | max rel error | tflite → IR → tflite rel error | reference |',
  '|---|---|---|---|---|---|---|',
  ...rows,
].join('\n');
if (writeTo) updateSection(writeTo, 'tflite-import', body);
