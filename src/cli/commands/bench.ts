// `weft bench kernel|comm`: measurements on the GPU machine, side by side with PyTorch in the
// same invocation, written as JSON records under bench/results/ (see src/bench/record.ts).
// The benchmark modules load CUDA lazily, so this file costs nothing on a machine without GPUs.
import type { Command } from 'commander';
import { resolveBackend } from '../../backends/index.js';
import { UserError } from '../../errors.js';
import { resolveOutputDir } from '../../io/output.js';
import { distEnv } from '../../launch/env.js';
import { guard } from '../errors.js';
import { optInt } from '../layout-options.js';
import { parseChoice } from '../options.js';
import { type MaskSpec, parseMask } from '../../mask/spec.js';
import { PLACEMENTS } from '../../mesh/mesh.js';
import type { Layout } from '../../run/index.js';
import { STRATEGY_NAMES } from '../../strategy/names.js';
import { SHARD_KINDS } from '../../shard/shard.js';
import { Rng } from '../../tensor/random.js';
import { DEVICE_OPS } from '../../bench/ops.js'; // names only: ops.ts loads CUDA when it runs

interface Common {
  torch: boolean;
  out: string;
  iters?: string;
  warmup?: string;
  python: string;
}
interface KernelOpts extends Common {
  seqs: string;
  heads: string;
  dim: string;
  dtype: string;
  masks: string;
  passes: string;
}
interface CommOpts extends Common {
  ops: string;
  sizes: string;
  dtype: string;
  blocking?: boolean;
}
interface OpsOpts extends Omit<Common, 'torch' | 'python'> {
  ops: string;
  sizes: string;
}
interface DecodeOpts extends Common {
  batches: string;
  contexts: string;
  newTokens: string;
  heads: string;
  kvHeads: string;
  dim: string;
  flexContexts?: string;
}
interface PrefillOpts extends Common {
  contexts: string;
  newTokens: string;
  heads: string;
  kvHeads: string;
  dim: string;
}
interface CpOpts extends Common {
  seqs: string;
  layouts: string;
  masks: string;
  heads: string;
  kvHeads?: string;
  dim: string;
  single: boolean;
}

/** `ring`, `ring:striped`, `allgather`, `ulysses`, `usp:UxR[:context-first]`, `double-ring:I`, `tokenring`. */
function parseLayouts(text: string): Layout[] {
  return text.split(',').map((item) => {
    const [name, a, b] = item.trim().split(':');
    const strategy = parseChoice(name!, '--layouts', STRATEGY_NAMES);
    const l: Layout = { strategy, world: 0 };
    if (strategy === 'usp') {
      const m = /^(\d+)x(\d+)$/.exec(a ?? '');
      if (!m) throw new UserError(`--layouts: usp needs its degrees, e.g. usp:2x4 (Ulysses × ring), not '${item}'`);
      l.ulysses = Number(m[1]);
      l.ring = Number(m[2]);
      if (b) l.placement = parseChoice(b, '--layouts', PLACEMENTS);
    } else if (strategy === 'double-ring') {
      if (!a || !/^\d+$/.test(a))
        throw new UserError(`--layouts: double-ring needs its inner ring size, e.g. double-ring:2, not '${item}'`);
      l.inner = Number(a);
    } else if (a) l.shard = parseChoice(a, '--layouts', SHARD_KINDS);
    return l;
  });
}

/** Masks by name at any length: any mask of the mask language (parseMask), and document:N or document-causal:N (N documents, lengths drawn from a fixed seed). */
function parseMasks(text: string): { name: string; spec: (S: number) => MaskSpec }[] {
  return text.split(';').map((item) => {
    const t = item.trim();
    const doc = /^document(-causal)?:(\d+)$/.exec(t);
    if (doc) {
      const n = Number(doc[2]);
      return {
        name: t,
        spec: (S: number): MaskSpec => {
          const rng = new Rng(7),
            cuts = new Set<number>();
          while (cuts.size < Math.min(n, S) - 1) cuts.add(rng.int(1, S - 1));
          return {
            kind: 'document',
            cuSeqlens: [0, ...[...cuts].sort((x, y) => x - y), S],
            inner: { kind: doc[1] ? 'causal' : 'full' },
          };
        },
      };
    }
    const spec = parseMask(t);
    return { name: t, spec: () => spec };
  });
}

function list<T extends string>(text: string, flag: string, choices: readonly T[]): T[] {
  return text.split(',').map((x) => parseChoice(x.trim(), flag, choices));
}

function ints(text: string, flag: string): number[] {
  return text.split(',').map((x) => {
    const t = x.trim().toLowerCase();
    const m = /^(\d+)([km]?)$/.exec(t);
    if (!m) throw new UserError(`${flag}: '${x}' is not a whole number (suffixes k and m mean ×1024 and ×1024²)`);
    const n = Number(m[1]) * (m[2] === 'k' ? 1024 : m[2] === 'm' ? 1024 * 1024 : 1);
    if (n < 1) throw new UserError(`${flag}: must be at least 1, not '${x}'`);
    return n;
  });
}

/** --heads, --kv-heads (default: the query heads) and --dim, checked together. */
function headShape(o: { heads: string; kvHeads?: string; dim: string }): {
  heads: number;
  kvHeads: number;
  headDim: 64 | 128;
} {
  const heads = ints(o.heads, '--heads')[0]!;
  const kvHeads = o.kvHeads === undefined ? heads : ints(o.kvHeads, '--kv-heads')[0]!;
  if (heads % kvHeads !== 0) throw new UserError(`--heads ${o.heads} must be a multiple of --kv-heads ${o.kvHeads}`);
  return { heads, kvHeads, headDim: Number(parseChoice(o.dim, '--dim', ['64', '128'] as const)) as 64 | 128 };
}

/** The repetitions and the records folder every GPU benchmark takes. */
function timing(o: Pick<Common, 'iters' | 'warmup' | 'out'>): { iters?: number; warmup?: number; outDir: string } {
  return { iters: optInt(o.iters, 'iters'), warmup: optInt(o.warmup, 'warmup', 0), outDir: resolveOutputDir(o.out) };
}

/** Whether and with which Python the PyTorch peers run. */
function peers(o: Pick<Common, 'torch' | 'python'>): { torch: boolean; python: string } {
  return { torch: o.torch, python: o.python };
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
  const bench = program
    .command('bench')
    .description('GPU benchmarks with PyTorch peers in the same run; records under bench/results/');
  common(
    bench
      .command('kernel')
      .description('flash attention kernels on one GPU vs PyTorch SDPA (FlashAttention-2 and cuDNN)')
      .option('--seqs <list>', 'sequence lengths', '8k,32k,128k')
      .option('--heads <H>', 'heads', '32')
      .option('--dim <D>', 'head dim: 64 | 128', '128')
      .option('--dtype <t>', 'bf16 | f16', 'bf16')
      .option(
        '--masks <list>',
        'semicolon-separated masks of the mask language (sliding:L,R; prefix:N; document-causal:N, N documents; ...)',
        'causal;full',
      )
      .option('--passes <list>', 'fwd,fwd+bwd', 'fwd,fwd+bwd'),
  ).action((o: KernelOpts) =>
    guard(async () => {
      const [heads] = ints(o.heads, '--heads');
      const options = {
        sizes: ints(o.seqs, '--seqs'),
        heads: heads!,
        headDim: Number(parseChoice(o.dim, '--dim', ['64', '128'] as const)) as 64 | 128,
        dtype: parseChoice(o.dtype, '--dtype', ['bf16', 'f16'] as const),
        masks: parseMasks(o.masks),
        passes: list(o.passes, '--passes', ['fwd', 'fwd+bwd'] as const),
        ...timing(o),
        ...peers(o),
      };
      await resolveBackend('cuda'); // after the options are checked: one line and exit 2 when there is no GPU
      await (await import('../../bench/kernel.js')).benchKernel(options);
    }),
  );
  common(
    bench
      .command('decode')
      .description(
        "one decode step (new tokens onto a KV cache) on one GPU vs PyTorch SDPA (FlashAttention-2, cuDNN) and FlexAttention: TB/s of K/V read beside the copy rate; under `weft launch -n N --`, the sharded KV cache's decode over the N GPUs",
      )
      .option('--batches <list>', 'sequences per batch', '1,4,16')
      .option('--contexts <list>', 'cached tokens per sequence', '32k,128k,1m')
      .option('--new-tokens <list>', 'new tokens per sequence', '1,4,8')
      .option('--heads <H>', 'query heads', '32')
      .option('--kv-heads <K>', 'key/value heads', '8')
      .option('--dim <D>', 'head dim: 64 | 128', '128')
      .option('--flex-contexts <list>', 'contexts at which FlexAttention runs too (each shape compiles; default: all)'),
  ).action((o: DecodeOpts) =>
    guard(async () => {
      const options = {
        batches: ints(o.batches, '--batches'),
        contexts: ints(o.contexts, '--contexts'),
        newTokens: ints(o.newTokens, '--new-tokens'),
        ...headShape(o),
        flexContexts: o.flexContexts === undefined ? undefined : ints(o.flexContexts, '--flex-contexts'),
        iters: optInt(o.iters, 'iters'),
        warmup: optInt(o.warmup, 'warmup', 0),
        torch: o.torch,
        python: o.python,
        outDir: o.out,
      };
      for (const [flag, xs] of [
        ['--batches', options.batches],
        ['--contexts', options.contexts],
        ['--new-tokens', options.newTokens],
      ] as const)
        if (xs.some((x) => x < 1)) throw new UserError(`${flag}: every entry must be at least 1`);
      await resolveBackend('cuda');
      // under `weft launch`: the decode step of the sharded KV cache over the job's GPUs
      if (process.env.WORLD_SIZE !== undefined)
        await (await import('../../bench/decode-cache.js')).benchDecodeCache(options);
      else await (await import('../../bench/decode.js')).benchDecode(options);
    }),
  );
  bench
    .command('prefill')
    .description(
      "a prefill of new tokens onto a cached context on one GPU (the KV cache's prefill step) against the causal rate of weft's flash kernel in the same run",
    )
    .option('--contexts <list>', 'cached tokens', '120k')
    .option('--new-tokens <list>', 'new tokens', '8k')
    .option('--heads <H>', 'query heads', '32')
    .option('--kv-heads <K>', 'key/value heads', '8')
    .option('--dim <D>', 'head dim: 64 | 128', '128')
    .option('--iters <n>', 'timed repetitions (default 5)')
    .option('--warmup <n>', 'untimed repetitions first (default 2)')
    .option('--out <dir>', 'where the JSON records go', 'bench/results')
    .action((o: PrefillOpts) =>
      guard(async () => {
        const options = {
          contexts: ints(o.contexts, '--contexts'),
          newTokens: ints(o.newTokens, '--new-tokens'),
          ...headShape(o),
          ...timing(o),
        };
        await resolveBackend('cuda');
        await (await import('../../bench/prefill.js')).benchPrefill(options);
      }),
    );
  common(
    bench
      .command('cp')
      .description(
        'context-parallel attention across the GPUs vs one GPU and PyTorch context_parallel; run under `weft launch -n N --`',
      )
      .option('--seqs <list>', 'global sequence lengths', '32k,128k,256k')
      .option(
        '--layouts <list>',
        'ring[:shard], allgather, ulysses, usp:UxR[:placement], double-ring:I, tokenring',
        'ring,allgather,ulysses,tokenring',
      )
      .option('--masks <list>', 'semicolon-separated: causal; full; sliding:L,R; document-causal:N', 'causal')
      .option('--heads <H>', 'query heads', '32')
      .option('--kv-heads <K>', 'key/value heads (default: the query heads)')
      .option('--dim <D>', 'head dim: 64 | 128', '128')
      .option('--no-single', 'skip the one-GPU baseline (and the efficiency)'),
  ).action((o: CpOpts) =>
    guard(async () => {
      const layouts = parseLayouts(o.layouts),
        masks = parseMasks(o.masks);
      const { heads, kvHeads, headDim } = headShape(o);
      const options = {
        seqs: ints(o.seqs, '--seqs'),
        layouts,
        masks,
        heads,
        kvHeads,
        dim: headDim,
        single: o.single,
        ...timing(o),
        ...peers(o),
      };
      if (distEnv() === undefined)
        throw new UserError('weft bench cp runs one process per GPU: weft launch -n 2 -- bench cp');
      await resolveBackend('cuda');
      await (await import('../../bench/cp.js')).benchCp(options);
    }),
  );
  bench
    .command('varlen')
    .description(
      'varlen dispatch vs the static layouts on packed batches: counted on CPU ranks, priced on 8–1024 H200s (records)',
    )
    .option('--worlds <list>', 'GPUs priced', '8,16,32,64,128,256,512,1024')
    .option('--per-gpu <list>', 'tokens per GPU priced', '8k,32k')
    .option('--seeds <list>', 'batches drawn per setting', '1,2,3')
    .option('--cpu-world <n>', 'ranks of the counted CPU comparison', '8')
    .option('--cpu-per-rank <n>', 'tokens per rank of the counted CPU comparison', '512')
    .option('--out <dir>', 'where the JSON records go (and the measured runs are read from)', 'bench/results')
    .option('--summary <file>', 'print the tables of a varlen records file and run nothing')
    .action(
      (o: {
        worlds: string;
        perGpu: string;
        seeds: string;
        cpuWorld: string;
        cpuPerRank: string;
        out: string;
        summary?: string;
      }) =>
        guard(async () => {
          const v = await import('../../bench/varlen.js');
          if (o.summary) {
            process.stdout.write(v.varlenTables(v.readVarlenRecords(o.summary)));
            return;
          }
          const file = await v.benchVarlen({
            outDir: o.out,
            worlds: ints(o.worlds, '--worlds'),
            perGpu: ints(o.perGpu, '--per-gpu'),
            seeds: ints(o.seeds, '--seeds'),
            cpuWorld: optInt(o.cpuWorld, 'cpu-world')!,
            cpuPerRank: optInt(o.cpuPerRank, 'cpu-per-rank')!,
            progress: (l) => process.stderr.write(`${l}\n`),
          });
          process.stdout.write(`${v.varlenTables(v.readVarlenRecords(file))}\nrecords: ${file}\n`);
        }),
    );
  bench
    .command('ops')
    .description(
      "the Device's memsets, fills, box copies, adds and casts on one GPU: GB/s and cost per call (the planner's deviceOps)",
    )
    .option('--ops <list>', DEVICE_OPS.join(','), DEVICE_OPS.join(','))
    .option('--sizes <list>', 'destination bytes (k, m suffixes)', '1m,16m,256m,1024m')
    .option('--iters <n>', 'samples per size', '10')
    .option('--warmup <n>', 'untimed samples first', '2')
    .option('--out <dir>', 'where the JSON records go', 'bench/results')
    .action((o: OpsOpts) =>
      guard(async () => {
        const options = {
          ops: list(o.ops, '--ops', DEVICE_OPS),
          sizes: ints(o.sizes, '--sizes'),
          ...timing(o),
        };
        await resolveBackend('cuda');
        await (await import('../../bench/ops.js')).benchOps(options);
      }),
    );
  common(
    bench
      .command('comm')
      .description('send/recv, all-to-all and all-gather bandwidth vs PyTorch; run under `weft launch -n N --`')
      .option('--ops <list>', 'sendrecv,alltoall,allgather', 'sendrecv,alltoall,allgather')
      .option('--sizes <list>', 'per-rank bytes (k, m suffixes)', '1m,16m,256m,1024m')
      .option('--dtype <t>', 'bf16 | f32', 'bf16')
      .option('--blocking', 'blocking NCCL communicators (lower latency for small messages)'),
  ).action((o: CommOpts) =>
    guard(async () => {
      const options = {
        ops: list(o.ops, '--ops', ['sendrecv', 'alltoall', 'allgather'] as const),
        sizes: ints(o.sizes, '--sizes'),
        dtype: parseChoice(o.dtype, '--dtype', ['bf16', 'f32'] as const),
        ...timing(o),
        ...peers(o),
        blocking: Boolean(o.blocking),
      };
      if (distEnv() === undefined)
        throw new UserError('weft bench comm runs one process per GPU: weft launch -n 2 -- bench comm');
      await resolveBackend('cuda');
      await (await import('../../bench/comm.js')).benchComm(options);
    }),
  );
}
