/** Training: reverse-mode gradients as ONNX graphs, training-mode switches, losses. Browser-safe. */
export { buildGradients, type GradientOptions, type Gradients, MIN_GRAD_OPSET } from './autodiff.js';
export { addCrossEntropyLoss, type CrossEntropyOptions } from './loss.js';
export { setTrainingMode, type TrainingModeReport } from './training-mode.js';
