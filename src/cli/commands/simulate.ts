// `weft simulate`: run a plan's schedule event by event — per-rank compute and communication,
// shared link ports — and compare it with the analytical prediction; optionally write the
// per-rank timeline.
import type { Command } from 'commander';
import { resolveOutput, writeOutput } from '../../io/output.js';
import { completeLayout, describeLayout, type PlanLayout, layoutProblem } from '../../plan/layout.js';
import { PLACEMENTS } from '../../mesh/mesh.js';
import { loadConfig, PLAN_STRATEGIES, type CandidateSpec } from '../../plan/config.js';
import { Progress } from '../../plan/progress.js';
import { buildContext, plan, prepare } from '../../plan/search.js';
import { SHARD_KINDS } from '../../shard/shard.js';
import { simulate } from '../../sim/simulate.js';
import { timeline } from '../../sim/timeline.js';
import { UserError } from '../../errors.js';
import { guard } from '../errors.js';
import { parseChoice, parseInt } from '../options.js';
import { table } from '../../report/table.js';
import { calibrationOption } from './plan.js';

interface SimOpts {
  config: string;
  plan?: string;
  json?: boolean;
  timeline?: string;
  calibration?: string;
  tp?: string;
  ulysses?: string;
  ring?: string;
  dp?: string;
  strategy?: string;
  placement?: string;
  shard?: string;
  inner?: string;
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(
      'simulate a plan event by event (per-rank compute and communication streams, shared links) and compare with the prediction',
    )
    .requiredOption('--config <file>', 'the JSON config of weft plan')
    .option('--plan <index>', "row of weft plan's ranking to simulate (1 = best; default 1)")
    .option('--tp <n>', 'tensor-parallel degree (a layout of your own instead of --plan)')
    .option('--ulysses <n>', 'Ulysses degree')
    .option('--ring <n>', 'ring degree')
    .option('--dp <n>', 'data-parallel degree')
    .option('--strategy <s>', PLAN_STRATEGIES.join(' | '))
    .option('--placement <p>', PLACEMENTS.join(' | '))
    .option('--shard <k>', SHARD_KINDS.join(' | '))
    .option('--inner <n>', 'inner ring size of a double ring')
    .option('--json', 'print the result as JSON')
    .option('--timeline <file>', 'write the per-rank timeline as Chrome trace JSON (open it in ui.perfetto.dev)')
    .option('--calibration <file>', 'a calibration (JSON) or weft bench records (JSON lines)')
    .action((o: SimOpts) => guard(() => run(o)));
}

function layoutFlags(o: SimOpts): CandidateSpec | undefined {
  const c: CandidateSpec = {};
  if (o.tp !== undefined) c.tp = parseInt(o.tp, '--tp');
  if (o.ulysses !== undefined) c.ulysses = parseInt(o.ulysses, '--ulysses');
  if (o.ring !== undefined) c.ring = parseInt(o.ring, '--ring');
  if (o.dp !== undefined) c.dp = parseInt(o.dp, '--dp');
  if (o.inner !== undefined) c.inner = parseInt(o.inner, '--inner');
  if (o.strategy !== undefined) c.strategy = parseChoice(o.strategy, '--strategy', PLAN_STRATEGIES);
  if (o.placement !== undefined) c.placement = parseChoice(o.placement, '--placement', PLACEMENTS);
  if (o.shard !== undefined) c.shard = parseChoice(o.shard, '--shard', SHARD_KINDS);
  return Object.keys(c).length ? c : undefined;
}

async function run(o: SimOpts): Promise<void> {
  const flags = layoutFlags(o);
  if (flags && o.plan !== undefined)
    throw new UserError('--plan: give either a plan index or layout flags (--tp, --ulysses, ...), not both');
  const index = o.plan === undefined ? 1 : parseInt(o.plan, '--plan');
  const out =
    o.timeline === undefined
      ? undefined
      : resolveOutput(o.timeline, [o.config, ...(o.calibration ? [o.calibration] : [])]); // before any work
  const cfg = loadConfig(o.config);
  const cal = calibrationOption(o.calibration);
  let l: PlanLayout;
  if (flags) {
    l = completeLayout(flags, cfg);
    const why = layoutProblem(l, cfg);
    if (why) throw new UserError(`layout ${describeLayout(l)}: ${why}`);
  } else {
    const { results } = await plan(cfg, cal, {}); // progress on stderr past 2 s
    const pick = results[index - 1];
    if (!pick) throw new UserError(`--plan: ${index} is beyond the ${results.length} layouts of this config`);
    if (!pick.prediction)
      throw new UserError(`--plan: layout ${index} (${describeLayout(pick.layout)}) cannot run: ${pick.reason}`);
    l = pick.layout;
  }
  const ctx = buildContext(cfg, cal);
  await prepare(ctx, [l]);
  const t0 = performance.now();
  const sim = simulate(ctx, l, (total) => new Progress('events simulated', total));
  const wallMs = performance.now() - t0;
  const diff = (sim.stepMs - sim.analyticStepMs) / sim.analyticStepMs;
  if (out) writeOutput(out, JSON.stringify(timeline(l, sim)) + '\n');
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        layout: { ...l, description: describeLayout(l) },
        simulated: {
          stepMs: sim.stepMs,
          layerMs: sim.layerMs,
          tasks: sim.tasks,
          scope: sim.scaled ? 'one layer' : 'full step',
          wallMs: Math.round(wallMs),
        },
        analytical: { stepMs: sim.analyticStepMs, layerMs: sim.analyticLayerMs },
        ranks: sim.ranks,
      }) + '\n',
    );
    return;
  }
  const f = (x: number): string => x.toFixed(x < 10 ? 3 : 1);
  process.stdout.write(
    `${describeLayout(l)} on ${cfg.cluster.nodes}×${cfg.cluster.gpusPerNode} ${cfg.cluster.gpu.name}\n`,
  );
  process.stdout.write(
    `simulated step ${f(sim.stepMs)} ms (layer ${f(sim.layerMs)} ms); analytical ${f(sim.analyticStepMs)} ms (layer ${f(sim.analyticLayerMs)} ms): ${diff >= 0 ? '+' : ''}${(100 * diff).toFixed(2)}%\n`,
  );
  process.stdout.write(
    `${sim.tasks.toLocaleString('en')} events over ${sim.ranks.length} simulated rank(s), each standing for ${sim.ranks[0]!.standsFor} GPU(s) with the same timeline; ` +
      `${sim.scaled ? 'one layer simulated, the step assembled from it' : 'the whole step simulated'}; ${Math.round(wallMs)} ms\n\n`,
  );
  const row = (x: (typeof sim.ranks)[number]): Record<string, string | number> => ({
    rank: x.rank,
    'finish ms': f(x.finishMs),
    'compute ms': f(x.computeMs),
    'collective ms': f(x.collectiveMs),
    'ring send ms': f(x.sendMs),
    'ring recv ms': f(x.recvMs),
  });
  const rows = sim.ranks.map(row);
  if (rows.length <= 16) process.stdout.write(table(rows));
  else {
    const sorted = [...sim.ranks].sort((a, b) => b.finishMs - a.finishMs);
    const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!.finishMs;
    process.stdout.write(
      `finish ms over ${rows.length} simulated ranks: max ${f(q(0))}, median ${f(q(0.5))}, min ${f(q(1))}; the slowest:\n`,
    );
    process.stdout.write(table(sorted.slice(0, 5).map(row)));
  }
  if (o.timeline) process.stdout.write(`\ntimeline → ${o.timeline}\n`);
}
