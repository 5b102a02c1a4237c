/**
 * Loads the TFLite interpreter's WebAssembly in Node, from @tensorflow/tfjs-tflite's `wasm/`
 * folder. The emscripten factory (`tflite_web_api_cc[_simd].js`) is called directly with the
 * .wasm bytes, so none of the browser plumbing of the package's client (script tags,
 * importScripts, fetch, a worker pool) is needed: DESIGN.md's shim of `self`/`importScripts`/
 * `MessageChannel` exists to get that client to pick this same non-threaded module. The SIMD
 * build (XNNPACK's fast kernels) is used when this WebAssembly engine validates it; the plain
 * one otherwise. One module serves every model in the process.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { badInput, firstLine } from '../errors.js';
import { instantiateTfliteWasm, type TfliteWasm, type TfliteWasmFactory, wasmGlobal } from './tflite-runner.js';

const require = createRequire(import.meta.url);

let loading: Promise<TfliteWasm> | undefined;

function wasmFolder(): string {
  try {
    return join(dirname(require.resolve('@tensorflow/tfjs-tflite/package.json')), 'wasm');
  } catch (e) {
    throw badInput(`the TFLite interpreter is not installed (@tensorflow/tfjs-tflite): ${firstLine(e)}; run npm install`);
  }
}

async function load(): Promise<TfliteWasm> {
  const folder = wasmFolder();
  const simdBinary = readFileSync(join(folder, 'tflite_web_api_cc_simd.wasm'));
  const build = wasmGlobal.validate(simdBinary) ? 'simd' : 'plain';
  const base = build === 'simd' ? 'tflite_web_api_cc_simd' : 'tflite_web_api_cc';
  const wasmBinary = build === 'simd' ? simdBinary : readFileSync(join(folder, `${base}.wasm`));
  const factory = require(join(folder, `${base}.js`)) as TfliteWasmFactory;
  return instantiateTfliteWasm(
    factory,
    wasmBinary,
    build,
    (path) => join(folder, path),
    () => {
      loading = undefined;
    },
  );
}

/** The process's interpreter module, loaded on first use (~0.2 s). */
export function nodeTfliteWasm(): Promise<TfliteWasm> {
  if (!loading) {
    loading = load();
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}
