#!/usr/bin/env node
// The `weft` command. Each subcommand lives in commands/<name>.ts and registers itself here.
import { Command, CommanderError } from 'commander';
import { registerAttn } from './commands/attn.js';
import { registerBench } from './commands/bench.js';
import { registerDemo } from './commands/demo.js';
import { registerReport } from './commands/report.js';
import { registerLaunch } from './commands/launch.js';
import { registerRun } from './commands/run.js';
import { registerPlan } from './commands/plan.js';
import { registerSimulate } from './commands/simulate.js';
import { weftVersion } from '../version.js';

const program = new Command('weft')
  .description('exact attention over very long sequences, split across CPU ranks or GPUs')
  .version(weftVersion(), '-V, --version', "print weft's version")
  .showHelpAfterError()
  .exitOverride();

// subcommands (one line each)
registerAttn(program);
registerBench(program);
registerDemo(program);
registerReport(program);
registerLaunch(program);
registerRun(program);
registerPlan(program);
registerSimulate(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 1 ? 2 : e.exitCode);
  throw e;
}
