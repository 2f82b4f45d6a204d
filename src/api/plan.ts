// The planner as a call: a config (the object a `weft plan --config` file holds, or that file's
// path) in, every layout ranked out — exactly what `weft plan --json` prints (the library exports it as `plan`).
import type { Calibration } from '../plan/calibration/types.js';
import { loadConfig, parseConfig, type PlanConfig } from '../plan/config.js';
import { jsonPlan, type JsonPlan } from '../plan/explain.js';
import { plan as search } from '../plan/search.js';

export interface PlanOutput {
  plans: JsonPlan[];
}

/** Rank every layout for a config object (or config file path): best first, infeasible last. */
export async function planJson(
  config: PlanConfig | Record<string, unknown> | string,
  o: { calibration?: Calibration } = {},
): Promise<PlanOutput> {
  const cfg = typeof config === 'string' ? loadConfig(config) : isParsed(config) ? config : parseConfig(config);
  return { plans: (await search(cfg, o.calibration)).results.map(jsonPlan) };
}

function isParsed(c: unknown): c is PlanConfig {
  return (
    typeof c === 'object' &&
    c !== null &&
    'maskText' in c &&
    'cluster' in c &&
    typeof (c as PlanConfig).cluster.world === 'number'
  );
}
