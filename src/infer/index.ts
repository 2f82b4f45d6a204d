export { CacheMap, KvCache } from './cache.js';
export { decode, prefillPassKv, type PassKind } from './attend.js';
export { runInference, runInferenceBatch, type InferProblem, type InferResult } from './run.js';
export type { InferStep } from './rank.js';
