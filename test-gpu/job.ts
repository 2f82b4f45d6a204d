// What the multi-GPU test files share: how many GPUs there are, and a job under a launcher that
// runs in the test's own process (a job under spawnSync from a test file hung twice).
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { startLaunch } from '../src/launch/launcher.js';

export const gpuCount = (): number =>
  (spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => l.startsWith('GPU '))
    .length;

export interface JobResult {
  code: number;
  message?: string;
  out: string;
  err: string;
}

/**
 * `command` (after the node executable) once per rank on `world` GPUs, stopped after `limitMs`;
 * stderr (and, with `echo`, stdout) shown as test diagnostics as it arrives.
 */
export async function runJob(o: {
  world: number;
  command: readonly string[];
  env?: NodeJS.ProcessEnv;
  limitMs: number;
  echo?: boolean;
}): Promise<JobResult> {
  const stdout = new PassThrough(),
    stderr = new PassThrough();
  const res = { out: '', err: '' };
  stdout.on('data', (d: Buffer) => {
    res.out += d;
    if (o.echo) process.stdout.write(`# ${d}`);
  });
  stderr.on('data', (d: Buffer) => {
    res.err += d;
    process.stdout.write(`# ${d}`);
  });
  const job = await startLaunch({
    nprocs: o.world,
    command: [process.execPath, ...o.command],
    env: o.env,
    stdout,
    stderr,
  });
  const timer = setTimeout(() => job.stop(`the job ran past ${o.limitMs / 1000} s`), o.limitMs);
  const r = await job.result.finally(() => clearTimeout(timer));
  return { code: r.code, message: r.message, ...res };
}
