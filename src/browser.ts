/** Library entry for browsers: the core, with onnxruntime-web as the backend. */
export * from './core.js';
export { webBackend } from './runtime/web.js';
