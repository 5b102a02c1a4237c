/**
 * The real TFLite interpreter in Node: `loadTflite(bytes)` opens a .tflite model in the
 * interpreter's WebAssembly build shipped by @tensorflow/tfjs-tflite (loaded once per process
 * by `tflite-node.ts`). The runner itself is `tflite-runner.ts`, shared with the browser.
 */
import { nodeTfliteWasm } from './tflite-node.js';
import { openTflite, type TfliteOpenOptions, type TfliteRunner, type TfliteWasmProvider } from './tflite-runner.js';

export type { TfliteRunner, TfliteTensorInfo, TfliteWasm, TfliteWasmProvider } from './tflite-runner.js';

export interface TfliteLoadOptions extends TfliteOpenOptions {
  /** Where the WebAssembly comes from (default: the package's files). */
  wasm?: TfliteWasmProvider;
}

/** Loads a .tflite model into the real TFLite interpreter. A model it refuses is bad input, with its reason. */
export async function loadTflite(bytes: Uint8Array, options: TfliteLoadOptions = {}): Promise<TfliteRunner> {
  const wasm = await (options.wasm ?? nodeTfliteWasm)();
  return openTflite(wasm, bytes, options);
}
