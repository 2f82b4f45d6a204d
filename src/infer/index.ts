export { CacheMap, KvCache, cacheBytes, type Placement, type RequestInfo } from './cache.js';
export { decode, prefill, prefillPassKv, prefillPassQ, type PassKind } from './attend.js';
export {
  runInference,
  runInferenceBatch,
  rowsNeeded,
  type InferProblem,
  type InferResult,
  type InferRequestInput,
} from './run.js';
export type { InferStep, StepKind } from './rank.js';
