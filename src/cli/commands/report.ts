// `weft report`: turn benchmark records into a Markdown table (stdout) or an HTML page.
import type { Command } from 'commander';
import { resolveOutput, writeOutput } from '../../io/output.js';
import { html, loadRecords, markdown } from '../../report/report.js';
import { UserError } from '../../errors.js';
import { guard } from '../errors.js';

interface ReportOpts { html?: string }

export function registerReport(program: Command): void {
  program.command('report')
    .description('summarise benchmark records (JSON lines) as Markdown tables, or as an HTML page with --html')
    .argument('[inputs...]', 'record files or folders', ['bench/results'])
    .option('--html <file>', 'write a self-contained HTML page instead')
    .action((inputs: string[], o: ReportOpts) => guard(() => {
      const page = o.html === undefined ? undefined : resolveOutput(o.html, inputs); // before reading
      const records = loadRecords(inputs);
      if (records.length === 0) throw new UserError(`no records in ${inputs.join(', ')}`);
      if (!page) { process.stdout.write(markdown(records)); return; }
      writeOutput(page, html(records));
      process.stderr.write(`weft report: ${records.length} records → ${o.html}\n`);
    }));
}
