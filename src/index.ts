// weft as a library: `import { attention, plan, readSafetensors } from 'weft'`. Everything here
// is what the `weft` command itself calls; bad input throws UserError with the command's
// one-line message. Nothing in this module loads the CUDA backend.
export { attention, type AttentionInput, type AttentionOutput, type InputTensor } from './api/attention.js';
export type { NonFinite } from './kernel/finite.js';
export { planJson as plan, type PlanOutput } from './api/plan.js';
export { UserError } from './errors.js';
export { readSafetensors, SafetensorsError, type StDType, type StTensor, writeSafetensors } from './io/safetensors.js';
export { type Layout, type Problem, type RunResult, type RunStats, runDistributed } from './run/index.js';
export { STRATEGY_NAMES, type StrategyName } from './strategy/names.js';
export { type MaskSpec, parseMask } from './mask/spec.js';
export type { HostTensor } from './tensor/host.js';
export type { DType } from './tensor/dtype.js';
export { weftVersion as version } from './version.js';
