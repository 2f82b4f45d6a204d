// `weft launch -n N [--nodes M --node-rank R --master ADDR:PORT] -- <weft command>`
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { startLaunch } from '../../launch/launcher.js';
import { UserError } from '../../errors.js';
import { guard } from '../errors.js';

function int(v: string, what: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
    throw new UserError(`${what} must be a non-negative integer, got '${v}'`);
  return n;
}

function parseMaster(s: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(s.trim());
  if (!m) throw new UserError(`--master must be ADDR:PORT, got '${s}'`);
  const port = Number(m[2]);
  if (port > 65535) throw new UserError(`--master port ${port} is above 65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function registerLaunch(program: Command): void {
  program
    .command('launch')
    .description(
      'run a weft command as one process per GPU (torchrun environment, rendezvous store, rank-prefixed output, fail-fast)',
    )
    .requiredOption('-n, --nproc <n>', 'processes on this node, one per GPU')
    .option('--nodes <m>', 'number of nodes (run the launcher on each)', '1')
    .option('--node-rank <r>', "this node's index, 0..nodes-1", '0')
    .option(
      '--master <addr:port>',
      'rendezvous store address; node 0 listens there (default 127.0.0.1 and a free port)',
    )
    .option('--token <secret>', 'shared secret of the store (default: WEFT_STORE_TOKEN, else random on one node)')
    .option('--grace <seconds>', 'time between SIGTERM and SIGKILL when stopping ranks', '5')
    .option('--no-weft', 'run the command as given instead of as a weft subcommand')
    .argument('<command...>', 'the weft subcommand and its arguments (after --)')
    .action(
      async (
        command: string[],
        opts: {
          nproc: string;
          nodes: string;
          nodeRank: string;
          master?: string;
          token?: string;
          grace: string;
          weft: boolean;
        },
      ) => {
        await guard(async () => {
          const nprocs = int(opts.nproc, '-n');
          const nodes = int(opts.nodes, '--nodes');
          const nodeRank = int(opts.nodeRank, '--node-rank');
          const graceS = Number(opts.grace);
          if (!(graceS >= 0))
            throw new UserError(`--grace must be a non-negative number of seconds, got '${opts.grace}'`);
          const master = opts.master === undefined ? undefined : parseMaster(opts.master);
          const token = opts.token ?? process.env.WEFT_STORE_TOKEN;
          const main = fileURLToPath(new URL('../main.js', import.meta.url));
          const argv = opts.weft ? [process.execPath, main, ...command] : command;
          let launch;
          try {
            launch = await startLaunch({
              nprocs,
              nodes,
              nodeRank,
              master,
              token,
              command: argv,
              graceMs: graceS * 1000,
            });
          } catch (e) {
            throw new UserError(e instanceof Error ? e.message : String(e));
          }
          const onSignal = (sig: NodeJS.Signals): void => launch.stop(`launcher received ${sig}`);
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          const r = await launch.result;
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          if (r.message) process.stderr.write(`weft launch: ${r.message}\n`);
          process.exitCode = r.code;
        });
      },
    );
}
