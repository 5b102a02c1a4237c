/**
 * The real TensorFlow Lite interpreter (compiled to WebAssembly, from @tensorflow/tfjs-tflite)
 * as a runner for .tflite files: load the bytes, read the inputs' and outputs' names, shapes and
 * element types, feed tensors, get tensors back. Exporters are checked on it, never on our own
 * reading of the format.
 *
 * This file does not know where the WebAssembly comes from (browser-safe): a `TfliteWasm` is
 * the loaded emscripten module (Node: `tflite-node.ts`, browser: `tflite-web.ts`). The interpreter's log
 * (`INFO: Created TensorFlow Lite XNNPACK delegate`, and the real reason a model is refused —
 * the status only says "Can't initialize model") is captured by the provider, never printed,
 * so `--json` output stays clean; load errors quote it.
 */
import { badInput } from '../errors.js';
import type { DType, TypedArray } from '../ir/dtype.js';
import { shapeSize, Tensor } from '../ir/tensor.js';

/** The embind surface of tflite_web_api_cc*.js this file uses. */
export interface TfliteWasmTensorInfo {
  id: number;
  dataType: string;
  name: string;
  /** "1,224,224,3" */
  shape: string;
  data(): TypedArray;
  delete?(): void;
}

interface WasmVector<T> {
  size(): number;
  get(i: number): T;
  delete(): void;
}

interface WasmRunner {
  GetInputs(): WasmVector<TfliteWasmTensorInfo>;
  GetOutputs(): WasmVector<TfliteWasmTensorInfo>;
  Infer(): boolean;
  delete(): void;
}

interface WasmStatusOr {
  ok(): boolean;
  errorMessage(): string;
  value(): WasmRunner;
  delete?(): void;
}

export interface TfliteWasmModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  TFLiteWebModelRunner: {
    CreateFromBufferAndOptions(
      ptr: number,
      length: number,
      options: { numThreads: number; enableProfiling: boolean; maxProfilingBufferEntries: number },
    ): WasmStatusOr;
  };
}

/** A loaded interpreter module and its captured log. */
export interface TfliteWasm {
  readonly module: TfliteWasmModule;
  /** Which build was loaded: 'simd' (WASM SIMD, XNNPACK's fast kernels) or 'plain'. */
  readonly build: 'simd' | 'plain';
  /** Lines the interpreter printed since the last call, removed from the log. */
  takeLog(): string[];
  /** Called after the module aborted: the next load starts a fresh one. */
  discard(): void;
}

export type TfliteWasmProvider = () => Promise<TfliteWasm>;

/** The emscripten factory of tflite_web_api_cc[_simd].js. */
export type TfliteWasmFactory = (options: {
  wasmBinary: Uint8Array;
  print: (line: string) => void;
  printErr: (line: string) => void;
  locateFile: (path: string) => string;
}) => Promise<TfliteWasmModule>;

/** The log is capped so a model that makes the interpreter complain per tensor cannot grow it without end. */
const MAX_LOG_LINES = 200;

/** Instantiates the module with its log captured (never printed); shared by the Node and browser loaders. */
export async function instantiateTfliteWasm(
  factory: TfliteWasmFactory,
  wasmBinary: Uint8Array,
  build: 'simd' | 'plain',
  locateFile: (path: string) => string,
  discard: () => void,
): Promise<TfliteWasm> {
  let log: string[] = [];
  const keep = (line: string): void => {
    if (log.length < MAX_LOG_LINES) log.push(line);
  };
  const module = await factory({ wasmBinary, print: keep, printErr: keep, locateFile });
  return {
    module,
    build,
    takeLog() {
      const lines = log;
      log = [];
      return lines;
    },
    discard,
  };
}

export interface TfliteTensorInfo {
  name: string;
  shape: number[];
  dtype: DType;
}

export interface TfliteOpenOptions {
  /** Interpreter threads (default 1; the Node builds are single-threaded). */
  threads?: number;
  /** The file name, for error messages. */
  name?: string;
}

export interface TfliteRunner {
  readonly inputs: readonly TfliteTensorInfo[];
  readonly outputs: readonly TfliteTensorInfo[];
  readonly build: 'simd' | 'plain';
  /** Runs the model on tensors given by input name (a typed array takes the input's shape); outputs by name. */
  run(feeds: Record<string, Tensor | TypedArray>): Promise<Record<string, Tensor>>;
  /** Runs the inputs already fed again (for timing: no copies in or out). */
  invoke(): void;
  dispose(): void;
}

const DTYPES: Record<string, DType> = {
  float32: 'float32',
  float64: 'float64',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  int32: 'int32',
  uint32: 'uint32',
  bool: 'bool',
};

function readInfos(
  vector: WasmVector<TfliteWasmTensorInfo>,
  what: string,
  file: string,
): { infos: TfliteTensorInfo[]; handles: TfliteWasmTensorInfo[] } {
  const infos: TfliteTensorInfo[] = [];
  const handles: TfliteWasmTensorInfo[] = [];
  try {
    for (let i = 0; i < vector.size(); i++) {
      const h = vector.get(i);
      handles.push(h);
      const dtype = DTYPES[h.dataType];
      if (!dtype) throw badInput(`${file}: ${what} "${h.name}" is ${h.dataType}, which the TFLite runner cannot pass`);
      const shape = h.shape === '' ? [] : h.shape.split(',').map(Number);
      infos.push({ name: h.name, shape, dtype });
    }
  } finally {
    vector.delete();
  }
  return { infos, handles };
}

/** The WebAssembly global (typed here: the project's TypeScript libs leave out the DOM's declarations). */
export const wasmGlobal = (
  globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean; RuntimeError: new () => Error } }
).WebAssembly;

function isAbort(e: unknown): boolean {
  return e instanceof wasmGlobal.RuntimeError || (e instanceof Error && /^Aborted\(/.test(e.message));
}

function reasons(log: string[]): string {
  const errors = log
    .filter((l) => !l.startsWith('INFO:'))
    .map((l) =>
      l
        .replace(/^ERROR:\s*/, '')
        .trim()
        .replace(/\.$/, ''),
    );
  // The interpreter repeats one complaint per tensor; show the distinct ones.
  const distinct = [...new Set(errors)].filter((l) => l !== '');
  if (distinct.length === 0) return '';
  const shown = distinct.slice(0, 3).join('; ');
  return distinct.length > 3 ? `${shown}; … (${distinct.length - 3} more)` : shown;
}

/** Whether the bytes carry TFLite's FlatBuffer file identifier. */
export function hasTfliteIdentifier(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && String.fromCharCode(bytes[4], bytes[5], bytes[6], bytes[7]) === 'TFL3';
}

/** Opens a .tflite model in a loaded TFLite interpreter. A model it refuses is bad input, with its reason. */
export function openTflite(wasm: TfliteWasm, bytes: Uint8Array, options: TfliteOpenOptions = {}): TfliteRunner {
  const file = options.name ?? 'model.tflite';
  if (!hasTfliteIdentifier(bytes)) throw badInput(`${file}: not a TFLite model (no "TFL3" identifier at byte 4)`);
  const m = wasm.module;
  wasm.takeLog();
  // The interpreter reads the flatbuffer in place for its whole life: the copy stays until dispose.
  const ptr = m._malloc(bytes.byteLength);
  if (ptr === 0) throw badInput(`${file}: the TFLite interpreter has no memory for ${bytes.byteLength} bytes`);
  m.HEAPU8.set(bytes, ptr);
  let runner: WasmRunner;
  try {
    const status = m.TFLiteWebModelRunner.CreateFromBufferAndOptions(ptr, bytes.byteLength, {
      numThreads: options.threads ?? 1,
      enableProfiling: false,
      maxProfilingBufferEntries: 1024,
    });
    if (!status.ok()) {
      const why = reasons(wasm.takeLog()) || status.errorMessage();
      status.delete?.();
      m._free(ptr);
      throw badInput(`${file}: the TFLite interpreter refuses the model: ${why}`);
    }
    runner = status.value();
    status.delete?.();
  } catch (e) {
    if (isAbort(e)) {
      wasm.discard();
      throw badInput(`${file}: the TFLite interpreter aborted while loading the model: ${reasons(wasm.takeLog()) || String(e)}`);
    }
    throw e;
  }
  let inputs: ReturnType<typeof readInfos>;
  let outputs: ReturnType<typeof readInfos>;
  try {
    inputs = readInfos(runner.GetInputs(), 'input', file);
    outputs = readInfos(runner.GetOutputs(), 'output', file);
  } catch (e) {
    runner.delete();
    m._free(ptr);
    throw e;
  }
  wasm.takeLog();
  let disposed = false;

  const invoke = (): void => {
    if (disposed) throw new Error('the TFLite runner was disposed');
    let ok: boolean;
    try {
      ok = runner.Infer();
    } catch (e) {
      if (isAbort(e)) {
        disposed = true;
        wasm.discard();
        throw badInput(`${file}: the TFLite interpreter aborted while running the model: ${reasons(wasm.takeLog()) || String(e)}`);
      }
      throw e;
    }
    if (!ok) throw badInput(`${file}: the TFLite interpreter failed to run the model: ${reasons(wasm.takeLog()) || 'no reason given'}`);
  };

  return {
    inputs: inputs.infos,
    outputs: outputs.infos,
    build: wasm.build,
    async run(feeds) {
      if (disposed) throw new Error('the TFLite runner was disposed');
      const known = new Set(inputs.infos.map((i) => i.name));
      for (const name of Object.keys(feeds)) {
        if (!known.has(name)) throw badInput(`${file} has no input "${name}"; its inputs are: ${[...known].join(', ')}`);
      }
      inputs.infos.forEach((info, i) => {
        const given = feeds[info.name];
        if (given === undefined) throw badInput(`no value given for input "${info.name}" of ${file}`);
        const data = given instanceof Tensor ? given.data : given;
        if (given instanceof Tensor) {
          if (given.dtype !== info.dtype) throw badInput(`input "${info.name}" of ${file} is ${info.dtype}, got ${given.dtype}`);
          if (given.dims.join(',') !== info.shape.join(',')) {
            throw badInput(`input "${info.name}" of ${file} has shape [${info.shape.join(',')}], got [${given.dims.join(',')}]`);
          }
        }
        // The view is into the interpreter's memory: fill it right away (memory may move later).
        const target = inputs.handles[i].data();
        if (target.length !== data.length || target.constructor !== data.constructor) {
          throw badInput(
            `input "${info.name}" of ${file} takes ${target.length} ${info.dtype} values, got ${data.length} in a ${data.constructor.name}`,
          );
        }
        (target as Float32Array).set(data as Float32Array);
      });
      invoke();
      const result: Record<string, Tensor> = {};
      outputs.infos.forEach((info, i) => {
        const view = outputs.handles[i].data();
        if (view.length !== shapeSize(info.shape)) {
          throw badInput(`output "${info.name}" of ${file} holds ${view.length} values for shape [${info.shape.join(',')}]`);
        }
        result[info.name] = Tensor.from(info.dtype, info.shape, view.slice());
      });
      return result;
    },
    invoke,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const h of [...inputs.handles, ...outputs.handles]) h.delete?.();
      runner.delete();
      m._free(ptr);
    },
  };
}
