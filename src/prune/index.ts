/**
 * Pruning: filter (channel) pruning with dependency groups and real channel removal, magnitude
 * and N:M weight masks, importance scores and the gradual schedule.
 */
export { analyzeChannels, type ChannelAnalysis } from './analyze.js';
export type { ChannelMap, Root } from './channels.js';
export {
  checkFraction,
  countMacs,
  type DependencyGroup,
  type FilterPruneOptions,
  type FilterPruneReport,
  MAC_FREE_DIM,
  type PrunedLayer,
  pruneFilters,
} from './filter.js';
export { type Criterion, channelScores, classScores } from './importance.js';
export type { Scope } from './plan.js';
export {
  applyMasks,
  gradualSparsity,
  type LayerSparsity,
  type MagnitudeOptions,
  type Masks,
  magnitudeMasks,
  nmMasks,
  type PrunableWeight,
  parsePattern,
  prunableWeights,
  weightSparsity,
} from './weights.js';
