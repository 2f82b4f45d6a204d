// The runner the CLI uses: global tensors in, global tensors out, N CPU ranks in between.
export { type Dims, type Layout, resolveLayout, type ResolvedLayout, validateLayout } from './layout.js';
export {
  type Problem,
  type RankStats,
  type RunOptions,
  type RunResult,
  type RunStats,
  runBatch,
  runDistributed,
  type StepStats,
} from './run.js';
