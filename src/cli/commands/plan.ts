// `weft plan`: which layout to use for a model, a sequence length and a cluster — predicted time,
// throughput and memory of every layout, fastest first.
import type { Command } from 'commander';
import { loadCalibration } from '../../plan/calibration/records.js';
import type { Calibration } from '../../plan/calibration/types.js';
import { loadConfig } from '../../plan/config.js';
import { planJson } from '../../api/plan.js';
import { explain, tableRows } from '../../plan/explain.js';
import { describeLayout } from '../../plan/layout.js';
import { maxSeqLen, plan } from '../../plan/search.js';
import { guard } from '../errors.js';
import { parseInt } from '../options.js';
import { table } from '../../report/table.js';
import { planInferenceCommand } from './infer.js';

interface PlanOpts {
  config: string;
  json?: boolean;
  top: string;
  calibration?: string;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description(
      'choose a context-parallel layout: predicted step time, TFLOP/s, MFU and memory of every layout, best first',
    )
    .requiredOption(
      '--config <file>',
      'JSON: model, mode, seqLen, batchSeqs, mask, cluster, optional candidates (docs/plan.md)',
    )
    .option('--json', 'print {"plans": [...]} (all layouts, best first, infeasible last)')
    .option('--top <n>', 'rows of the table', '15')
    .option(
      '--calibration <file>',
      'a calibration (JSON) or weft bench records (JSON lines) to use instead of the shipped figures',
    )
    .action((o: PlanOpts) => guard(() => run(o)));
}

/** The calibration a --calibration option names, with a note on stderr of what was used. */
export function calibrationOption(file: string | undefined): Calibration | undefined {
  if (!file) return undefined;
  const c = loadCalibration(file);
  if (c.used || c.skipped.length)
    process.stderr.write(
      `weft: calibration from ${file}: ${c.used} record(s) used${c.skipped.length ? `, ${c.skipped.length} skipped (${c.skipped[0]})` : ''}\n`,
    );
  return c.calibration;
}

async function run(o: PlanOpts): Promise<void> {
  const top = parseInt(o.top, '--top');
  const calibration = calibrationOption(o.calibration);
  if (planInferenceCommand(o.config, o.json === true, top, calibration)) return; // decode, or prefill onto a cache (infer.ts)
  const cfg = loadConfig(o.config);
  if (o.json) {
    process.stdout.write(JSON.stringify(await planJson(cfg, { calibration })) + '\n');
    return;
  }
  const { results } = await plan(cfg, calibration, {}); // progress on stderr past 2 s
  const m = cfg.model,
    cl = cfg.cluster;
  process.stdout.write(
    `${m.name}, ${cfg.mode}, S=${cfg.seqLen}, ${cfg.batchSeqs} sequence(s) per step, mask ${cfg.maskText}; ` +
      `${cl.nodes}×${cl.gpusPerNode} ${cl.gpu.name} — ${results.length} layouts\n\n`,
  );
  process.stdout.write(table(tableRows(results, top)));
  if (results.length > top) process.stdout.write(`(${results.length - top} more; --top N or --json for all)\n`);
  process.stdout.write('\n' + explain(cfg, results));
  const best = results[0];
  if (best?.feasible) {
    // the question after "which layout": how far can it go on this cluster (memory alone)
    const S = await maxSeqLen(cfg, best.layout, calibration);
    process.stdout.write(
      `\nLongest sequence ${describeLayout(best.layout)} fits here: ${S.toLocaleString('en-US')} tokens (memory model, multiples of 1024).\n`,
    );
  }
}
