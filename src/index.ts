/** Library entry for Node: the core, file I/O, and onnxruntime-node as the backend. */
export * from './core.js';
export type { Batch, Dataset } from './data/dataset.js';
export { FASHION_MNIST_CLASSES, fashionMnistAvailable, loadFashionMnist } from './data/fashion-mnist.js';
export { type DatasetOptions, openDataset } from './data/spec.js';
export { type CompareResult, compareOnData, type TensorAgreement } from './eval/agreement.js';
export { ctcGreedyDecode, paddleOcrClasses, type TextAgreement, textAgreement } from './eval/ctc.js';
export { type LatencyOptions, type LatencyResult, measureLatency } from './eval/latency.js';
export { exportTflite, type TfliteExportOptions, type TfliteExportReport } from './formats/tflite/export/index.js';
export {
  importTflite,
  readTflite,
  type TfliteImportOptions,
  type TfliteModel,
  type TfliteReadOptions,
  unsupportedOps,
  writeTflite,
} from './formats/tflite/index.js';
export { assertNotInput, loadModel, readFileBytes, type SavedModel, type SaveOptions, saveModel, writeAtomically } from './io/files.js';
export { type DemoReport, runDemo } from './pipeline/demo.js';
export {
  type ExportOptions,
  type ExportReport,
  type ExportResult,
  type ExportVerifyReport,
  exportModel,
  verifyExport,
} from './pipeline/export.js';
export {
  type ModelFigures,
  type PruneMethod,
  type PruneRecipe,
  type PruneRecipeReport,
  type PruneRound,
  runPrune,
} from './pipeline/prune.js';
export { QAT_SCHEMES, type QatRecipe, type QatRecipeReport, type QatScheme, runQat } from './pipeline/qat.js';
export { runTraining, type TrainRecipe, type TrainRecipeReport } from './pipeline/train.js';
export { type TfliteVerifyOptions, type TfliteVerifyReport, verifyTflite } from './pipeline/verify.js';
export {
  analyzeChannels,
  applyMasks,
  type ChannelAnalysis,
  type Criterion,
  countMacs,
  type DependencyGroup,
  type FilterPruneOptions,
  type FilterPruneReport,
  gradualSparsity,
  type LayerSparsity,
  type Masks,
  magnitudeMasks,
  nmMasks,
  type PrunedLayer,
  parsePattern,
  pruneFilters,
  weightSparsity,
} from './prune/index.js';
export {
  CALIBRATION_METHODS,
  type CalibrationMethod,
  type QualityOptions,
  type QualityReport,
  type QuantizeOptions,
  type QuantizeReport,
  quantizeModel,
  SCHEMES,
  type Scheme,
} from './quantize/index.js';
export { compareLayers, type LayerAgreement, matchLayers } from './quantize/layers.js';
export { nodeBackend } from './runtime/node.js';
export { loadTflite, type TfliteLoadOptions, type TfliteRunner, type TfliteTensorInfo, type TfliteWasmProvider } from './runtime/tflite.js';
