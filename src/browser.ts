/** Library entry for browsers: the core, with onnxruntime-web as the backend. */
export * from './core.js';
export { exportTflite, type TfliteExportOptions, type TfliteExportReport } from './formats/tflite/export/index.js';
export { importTflite, readTflite, type TfliteModel, unsupportedOps, writeTflite } from './formats/tflite/index.js';
export {
  analyzeChannels,
  applyMasks,
  countMacs,
  magnitudeMasks,
  nmMasks,
  parsePattern,
  pruneFilters,
  weightSparsity,
} from './prune/index.js';
export { loadTfliteWeb } from './runtime/tflite-web.js';
export { webBackend } from './runtime/web.js';
