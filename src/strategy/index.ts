export * from './types.js';
export * from './accounting.js';
export { allgather } from './allgather.js';
export { doubleRing, type DoubleRingOptions } from './double-ring.js';
export { ring, ringAttention } from './ring.js';
export { tokenring } from './tokenring.js';
export { ulysses, ulyssesAttention } from './ulysses.js';
export { usp, type UspOptions } from './usp.js';
export { HeadPlan } from './heads.js';
