/**
 * Loads the TFLite interpreter's WebAssembly in a browser, from a URL that serves
 * @tensorflow/tfjs-tflite's `wasm/` files. Like `tflite-node.ts`, it calls the emscripten factory
 * directly (non-threaded build, SIMD when the engine validates it), so the page needs no
 * cross-origin isolation and no worker. The factory script is a classic script, not a module:
 * it is fetched and evaluated to get at its `tflite_web_api_ModuleFactory`.
 */
import {
  instantiateTfliteWasm,
  openTflite,
  type TfliteOpenOptions,
  type TfliteRunner,
  type TfliteWasm,
  type TfliteWasmFactory,
  wasmGlobal,
} from './tflite-runner.js';

const loaded = new Map<string, Promise<TfliteWasm>>();

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function load(base: string): Promise<TfliteWasm> {
  const simdBinary = await fetchBytes(`${base}tflite_web_api_cc_simd.wasm`);
  const build = wasmGlobal.validate(simdBinary) ? 'simd' : 'plain';
  const name = build === 'simd' ? 'tflite_web_api_cc_simd' : 'tflite_web_api_cc';
  const wasmBinary = build === 'simd' ? simdBinary : await fetchBytes(`${base}${name}.wasm`);
  const r = await fetch(`${base}${name}.js`);
  if (!r.ok) throw new Error(`cannot fetch ${base}${name}.js: HTTP ${r.status}`);
  const source = await r.text();
  const factory = new Function(`${source}\nreturn tflite_web_api_ModuleFactory;`)() as TfliteWasmFactory;
  return instantiateTfliteWasm(
    factory,
    wasmBinary,
    build,
    (path) => `${base}${path}`,
    () => {
      loaded.delete(base);
    },
  );
}

/** The interpreter module served from `baseUrl` (a folder URL), loaded once per page. */
export function webTfliteWasm(baseUrl: string): Promise<TfliteWasm> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  let p = loaded.get(base);
  if (!p) {
    p = load(base);
    loaded.set(base, p);
    p.catch(() => loaded.delete(base));
  }
  return p;
}

/** Loads a .tflite model into the TFLite interpreter whose files are served from `wasmUrl`. */
export async function loadTfliteWeb(bytes: Uint8Array, wasmUrl: string, options: TfliteOpenOptions = {}): Promise<TfliteRunner> {
  return openTflite(await webTfliteWasm(wasmUrl), bytes, options);
}
