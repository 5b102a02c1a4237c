/**
 * Quantization, as a library call:
 *
 *   const data = openDataset('fashion-mnist:train', { input: model.graph.inputs[0] });
 *   const report = await quantizeModel(model, { scheme: 'uint8', calib: data, backend: nodeBackend() });
 *
 * The model is rewritten in place (QDQ form for the static int8 schemes); the report says what
 * was quantized, what stayed float and why, the scales, and the weight bytes before and after.
 */
import type { Model } from '../ir/graph.js';
import { type QualityOptions, type QualityReport, quantizeWithQuality, wantsQuality } from './quality.js';
import { findScheme, type QuantizeOptions, type QuantizeReport } from './schemes.js';

export { CALIBRATION_METHODS, type CalibrationMethod, isCalibrationMethod } from './observers.js';
export { checkQualityOptions, type QualityOptions, type QualityReport } from './quality.js';
export { findScheme, type QuantizeOptions, type QuantizeReport, SCHEMES, type Scheme, schemeNames } from './schemes.js';

/** Quality options (equalize, biasCorrection, maxDrop, minSqnr, sensitivity, sizeBudget) go through quality.ts. */
export async function quantizeModel(
  model: Model,
  options: QuantizeOptions & QualityOptions,
): Promise<QuantizeReport & { quality?: QualityReport }> {
  const { scheme, param } = findScheme(options.scheme ?? 'uint8');
  const opts = { ...options, scheme: options.scheme ?? scheme.name };
  if (wantsQuality(options)) return quantizeWithQuality(model, opts, scheme, param);
  return scheme.quantize(model, opts, param);
}
