// The runner the CLI uses: global tensors in, global tensors out, N CPU ranks in between.
export { type Layout, resolveLayout, validateLayout } from './layout.js';
export { type Problem, type RunResult, type RunStats, runBatch, runDistributed } from './run.js';
