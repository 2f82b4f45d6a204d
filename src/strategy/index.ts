export type { Strategy } from './types.js';
export { allgather } from './allgather.js';
export { doubleRing } from './double-ring.js';
export { ring } from './ring.js';
export { tokenring } from './tokenring.js';
export { ulysses } from './ulysses.js';
export { usp } from './usp.js';
