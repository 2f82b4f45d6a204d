// `weft report`: turn benchmark records into a Markdown table (stdout) or an HTML page.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { resolveOutput, writeOutput } from '../../io/output.js';
import { htmlReport, readTimeline, timelinesIn } from '../../report/html.js';
import { loadRecords, markdown } from '../../report/report.js';
import { UserError } from '../../errors.js';
import { guard } from '../errors.js';

interface ReportOpts {
  html?: string;
  timeline?: string[];
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('summarise benchmark records (JSON lines) as Markdown tables, or as an HTML page with --html')
    .argument('[inputs...]', 'record files or folders (default: bench/results in the current folder)')
    .option('--html <file>', 'write a self-contained HTML page of charts instead (works offline)')
    .option(
      '--timeline <files...>',
      'with --html: per-rank timelines to draw (weft run --timeline files or Chrome traces); *timeline*.json files in the input folders are drawn too',
    )
    .action((inputs: string[], o: ReportOpts) =>
      guard(() => {
        if (inputs.length === 0) {
          const here = path.resolve('bench/results');
          if (!existsSync(here))
            throw new UserError(
              `no records: looked in ${here}, which does not exist (give record files or folders: weft report DIR…)`,
            );
          inputs = [here];
        }
        const page = o.html === undefined ? undefined : resolveOutput(o.html, [...inputs, ...(o.timeline ?? [])]); // before reading
        const records = loadRecords(inputs);
        if (records.length === 0) throw new UserError(`no records in ${inputs.join(', ')} (looked for *.jsonl)`);
        if (!page) {
          process.stdout.write(markdown(records));
          return;
        }
        const timelines = [...timelinesIn(inputs), ...(o.timeline ?? [])].map(readTimeline);
        writeOutput(page, htmlReport(records, { timelines, sources: inputs }));
        process.stderr.write(`weft report: ${records.length} records → ${o.html}\n`);
      }),
    );
}
