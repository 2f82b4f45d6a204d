// `weft bench kernel|comm`: measurements on the GPU machine, side by side with PyTorch in the
// same invocation, written as JSON records under bench/results/ (see src/bench/record.ts).
// The benchmark modules load CUDA lazily, so this file costs nothing on a machine without GPUs.
import type { Command } from 'commander';
import { resolveBackend } from '../../backend/index.js';
import { guard, UserError } from '../errors.js';
import { parseChoice } from '../options.js';

interface Common { torch: boolean; out: string; iters?: string; warmup?: string; python: string }
interface KernelOpts extends Common { seqs: string; heads: string; dim: string; dtype: string; masks: string; passes: string }
interface CommOpts extends Common { ops: string; sizes: string; dtype: string; blocking?: boolean }

function list<T extends string>(text: string, flag: string, choices: readonly T[]): T[] {
  return text.split(',').map((x) => parseChoice(x.trim(), flag, choices));
}

function ints(text: string, flag: string): number[] {
  return text.split(',').map((x) => {
    const t = x.trim().toLowerCase();
    const m = /^(\d+)([km]?)$/.exec(t);
    if (!m) throw new UserError(`${flag}: '${x}' is not a whole number (suffixes k and m mean ×1024 and ×1024²)`);
    return Number(m[1]) * (m[2] === 'k' ? 1024 : m[2] === 'm' ? 1024 * 1024 : 1);
  });
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const [n] = ints(text, flag);
  if (!n) throw new UserError(`${flag}: must be at least 1`);
  return n;
}

function common(cmd: Command): Command {
  return cmd
    .option('--no-torch', 'skip the PyTorch peers')
    .option('--python <exe>', 'Python with torch, for the peers', 'python3')
    .option('--iters <n>', 'timed repetitions (default: per benchmark)')
    .option('--warmup <n>', 'untimed repetitions first (default: per benchmark)')
    .option('--out <dir>', 'where the JSON records go', 'bench/results');
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('GPU benchmarks with PyTorch peers in the same run; records under bench/results/');
  common(bench.command('kernel')
    .description('flash attention kernels on one GPU vs PyTorch SDPA (FlashAttention-2 and cuDNN)')
    .option('--seqs <list>', 'sequence lengths', '8k,32k,128k')
    .option('--heads <H>', 'heads', '32')
    .option('--dim <D>', 'head dim: 64 | 128', '128')
    .option('--dtype <t>', 'bf16 | f16', 'bf16')
    .option('--masks <list>', 'causal,full', 'causal,full')
    .option('--passes <list>', 'fwd,fwd+bwd', 'fwd,fwd+bwd'))
    .action((o: KernelOpts) => guard(async () => {
      await resolveBackend('cuda'); // one line and exit 2 when there is no GPU
      const { benchKernel } = await import('../../bench/kernel.js');
      const [heads] = ints(o.heads, '--heads');
      await benchKernel({
        sizes: ints(o.seqs, '--seqs'), heads: heads!, headDim: Number(parseChoice(o.dim, '--dim', ['64', '128'] as const)) as 64 | 128,
        dtype: parseChoice(o.dtype, '--dtype', ['bf16', 'f16'] as const),
        masks: list(o.masks, '--masks', ['causal', 'full'] as const), passes: list(o.passes, '--passes', ['fwd', 'fwd+bwd'] as const),
        iters: count(o.iters, '--iters'), warmup: count(o.warmup, '--warmup'), torch: o.torch, python: o.python, outDir: o.out,
      });
    }));
  common(bench.command('comm')
    .description('send/recv, all-to-all and all-gather bandwidth vs PyTorch; run under `weft launch -n N --`')
    .option('--ops <list>', 'sendrecv,alltoall,allgather', 'sendrecv,alltoall,allgather')
    .option('--sizes <list>', 'per-rank bytes (k, m suffixes)', '1m,16m,256m,1024m')
    .option('--dtype <t>', 'bf16 | f32', 'bf16')
    .option('--blocking', 'blocking NCCL communicators (lower latency for small messages)'))
    .action((o: CommOpts) => guard(async () => {
      if (process.env.WORLD_SIZE === undefined) throw new UserError('weft bench comm runs one process per GPU: weft launch -n 2 -- bench comm');
      await resolveBackend('cuda');
      const { benchComm } = await import('../../bench/comm.js');
      await benchComm({
        ops: list(o.ops, '--ops', ['sendrecv', 'alltoall', 'allgather'] as const), sizes: ints(o.sizes, '--sizes'),
        dtype: parseChoice(o.dtype, '--dtype', ['bf16', 'f32'] as const), iters: count(o.iters, '--iters'), warmup: count(o.warmup, '--warmup'),
        torch: o.torch, python: o.python, outDir: o.out, blocking: Boolean(o.blocking),
      });
    }));
}
