/**
 * Training: reverse-mode gradients as ONNX graphs, training-mode switches, losses (cross-entropy,
 * MSE, distillation), optimizers, the training step as one graph, the loop, and the fake-quantized
 * form quantization-aware training trains. Browser-safe: the loop takes the onnxruntime module
 * (node or web) as an argument.
 */
export { type AugmentOptions, augmentImages, resolveAugment } from './augment.js';
export { buildGradients, type GradientOptions, type Gradients, MIN_GRAD_OPSET } from './autodiff.js';
export { type FakeQuantBias, type FakeQuantPlan, fromFakeQuant, toFakeQuant } from './fake-quant.js';
export {
  addCrossEntropyLoss,
  addDistillationLoss,
  addMseLoss,
  type CrossEntropyOptions,
  type DistillationOptions,
  type MseOptions,
} from './loss.js';
export {
  addOptimizer,
  learningRate,
  type OptimizerConfig,
  type OptimizerKind,
  resolveOptimizer,
  type ScheduleConfig,
  type ScheduleKind,
  type StateSlot,
} from './optimizer.js';
export { buildTrainingStep, type DistillConfig, exportModel, type LossKind, type TrainingStep, type TrainingStepOptions } from './step.js';
export {
  defaultLearningRate,
  type EpochReport,
  type SessionConfig,
  type StepProgress,
  type StepResult,
  TrainingDiverged,
  TrainingSession,
  type TrainOptions,
  type TrainReport,
  train,
} from './trainer.js';
export { setTrainingMode, type TrainingModeReport } from './training-mode.js';
