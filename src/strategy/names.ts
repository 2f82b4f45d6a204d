// The strategies by name: the runner, the CLI and the planner all take their names from here.
// 'local' is no strategy of its own: one rank (or data-parallel replicas) attending its whole
// sequence, which the planner compares against the context-parallel layouts.

export const STRATEGY_NAMES = ['ring', 'allgather', 'ulysses', 'usp', 'double-ring', 'tokenring'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export function isStrategyName(s: string): s is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(s);
}
