// `weft bench kernel`: weft's CUDA attention kernels (forward, forward+backward) on one GPU,
// timed with CUDA events on the compute stream after warm-up, then the PyTorch peers on the same
// configurations in the same invocation (bench/peers/sdpa_peer.py): SDPA's FlashAttention-2 and
// cuDNN backends (causal and full masks) and FlexAttention (torch.compile'd flex_attention with a
// block mask built from the same mask, any mask but full); a peer that cannot run a
// configuration says why. Reported as TFLOP/s and as ratios. FLOPs follow the usual convention:
// forward 4·S²·H·D × the unmasked fraction, backward 2.5 × forward.
//
// The mask view of a configuration is built once through the mask language, as a strategy does;
// its device copy and block lists are made during warm-up and reused, as across ring steps.
import { openCuda } from '../backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import { defaultScale } from '../kernel/kernel.js';
import { attentionFlops, type KernelPass } from '../kernel/flops.js';
import { MaskGrid } from '../mask/grid.js';
import { lower, maskName, type MaskSpec } from '../mask/spec.js';
import { maskView } from '../mask/view.js';
import { peerScript, streamPeer } from './peer.js';
import { type BenchRecord, makeRecord, summarize, writeRecords } from './record.js';

/** A mask of the mask language at any length (document masks place their boundaries per length). */
export interface KernelMask {
  name: string;
  spec: (S: number) => MaskSpec;
}

const named = (spec: MaskSpec): KernelMask => ({ name: maskName(spec), spec: () => spec });

export interface KernelBenchOptions {
  /** Sequence lengths (default 8192, 32768, 131072). */
  sizes?: readonly number[];
  /** Query heads (default 32); key/value heads the same. */
  heads?: number;
  headDim?: 64 | 128;
  dtype?: 'bf16' | 'f16';
  /** Default: causal and full. */
  masks?: readonly KernelMask[];
  passes?: readonly KernelPass[];
  /** Timed calls per configuration and untimed warm-up calls (defaults shrink with the size). */
  iters?: number;
  warmup?: number;
  /** Also time the PyTorch peers (SDPA FlashAttention-2 and cuDNN, FlexAttention) in the same invocation (default true). */
  torch?: boolean;
  /** Python with torch (default 'python3'). */
  python?: string;
  /** Where to write the records (default 'bench/results'); null: do not write. */
  outDir?: string | null;
  log?: (line: string) => void;
}

/** One timed configuration; `kind` and `slices` tell the peers the mask (slices: [q0, q1, k0, k1, left, right], −1 unbounded). */
interface Config {
  S: number;
  H: number;
  D: number;
  dtype: string;
  mask: string;
  kind: 'causal' | 'full' | 'other';
  slices: number[][];
  pass: KernelPass;
  warmup: number;
  iters: number;
}

function repeats(S: number, pass: KernelPass, o: KernelBenchOptions): { warmup: number; iters: number } {
  const big = S >= 65536,
    mid = S > 8192;
  return {
    warmup: o.warmup ?? (big ? 1 : mid ? 2 : 3),
    iters: o.iters ?? (big ? (pass === 'fwd' ? 3 : 2) : mid ? 5 : 10),
  };
}

const PEER = peerScript('sdpa_peer.py');

interface PeerLine {
  S: number;
  mask: string;
  pass: KernelPass;
  name: string;
  samples?: number[];
  error?: string;
}

/** The peers that apply to a mask: SDPA's fused backends for causal and full, FlexAttention for every mask but full. */
function peersFor(kind: Config['kind']): string[] {
  return kind === 'full' ? ['sdpa-flash', 'sdpa-cudnn'] : ['sdpa-flash', 'sdpa-cudnn', 'flex'];
}

function runPeer(
  python: string,
  configs: readonly Config[],
  log: (l: string) => void,
): Promise<{ info: Record<string, unknown>; lines: PeerLine[] }> {
  const arg = JSON.stringify({ configs: configs.map((c) => ({ ...c, peers: peersFor(c.kind) })) });
  return streamPeer<PeerLine>(python, PEER, arg, (j) =>
    log(
      j.samples
        ? `  ${j.name.padEnd(10)} S=${j.S} ${j.mask} ${j.pass}: median ${summarize(j.samples).median.toFixed(3)} ms`
        : `  ${j.name.padEnd(10)} S=${j.S} ${j.mask} ${j.pass}: not run — ${j.error}`,
    ),
  );
}

export async function benchKernel(o: KernelBenchOptions = {}): Promise<BenchRecord[]> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const sizes = o.sizes ?? [8192, 32768, 131072];
  const H = o.heads ?? 32,
    D = o.headDim ?? 128,
    dtype = o.dtype ?? 'bf16';
  const masks = o.masks ?? [named({ kind: 'causal' }), named({ kind: 'full' })],
    passes = o.passes ?? ['fwd', 'fwd+bwd'];
  const rt = await openCuda();
  const kernel = new CudaKernel(rt);
  const rand = new DeviceRandom(rt);
  const random = (shape: number[], seed: number): CudaTensor => rand.tensor(dtype, shape, seed);
  log(
    `weft bench kernel on ${rt.info.name} (${rt.info.sms} SMs, driver ${rt.info.driverVersion}, NVRTC ${rt.info.nvrtcVersion}): B=1 H=${H} D=${D} ${dtype}`,
  );
  const records: BenchRecord[] = [];
  const configs: Config[] = [];
  const flops = new Map<string, number>();
  const key = (S: number, mask: string, pass: string): string => `${S}/${mask}/${pass}`;
  const t0 = rt.event(true),
    t1 = rt.event(true);
  for (const S of sizes) {
    const q = random([S, H, D], 1),
      k = random([S, H, D], 2),
      v = random([S, H, D], 3),
      dout = random([S, H, D], 4);
    const pos = Int32Array.from({ length: S }, (_, i) => i);
    for (const m of masks) {
      const spec = m.spec(S),
        mask = m.name;
      const grid = MaskGrid.build(spec, S);
      const view = maskView(grid, pos, pos);
      const scale = defaultScale(D);
      const kind = spec.kind === 'causal' || spec.kind === 'full' ? spec.kind : 'other';
      const slices = lower(spec, S).map((x) => [
        x.q[0],
        x.q[1],
        x.k[0],
        x.k[1],
        x.left === Infinity ? -1 : x.left,
        x.right === Infinity ? -1 : x.right,
      ]);
      for (const pass of passes) {
        const { warmup, iters } = repeats(S, pass, o);
        const cfg: Config = { S, H, D, dtype, mask, kind, slices, pass, warmup, iters };
        configs.push(cfg);
        const total = attentionFlops(grid.area(), H, D, pass);
        flops.set(key(S, mask, pass), total);
        const once = (): void => {
          const st = kernel.forward({ q, k, v, view, scale });
          if (pass === 'fwd+bwd') {
            const g = kernel.backward({ q, k, v, out: st.out, lse: st.lse, dout, view, scale });
            for (const x of [g.dq, g.dk, g.dv]) (x as CudaTensor).release();
          }
          (st.out as CudaTensor).release();
          (st.lse as CudaTensor).release();
        };
        for (let i = 0; i < warmup; i++) once();
        await rt.synchronize();
        const samples: number[] = [];
        for (let i = 0; i < iters; i++) {
          t0.record(rt.compute);
          once();
          t1.record(rt.compute);
          await rt.waitEvent(t1);
          samples.push(t1.since(t0));
        }
        const med = summarize(samples).median,
          tflops = total / (med * 1e-3) / 1e12;
        log(`  weft       S=${S} ${mask} ${pass}: median ${med.toFixed(3)} ms, ${tflops.toFixed(1)} TFLOP/s`);
        records.push(
          makeRecord(
            'kernel',
            'weft',
            { pass, S, B: 1, H, D, mask, dtype, kernel: pass === 'fwd' ? 'weft_fwd' : 'weft_fwd+weft_bwd' },
            'ms',
            samples,
            { tflops },
            { warmup, gpu: rt.info.name, nvrtc: rt.info.nvrtcVersion },
          ),
        );
      }
    }
    for (const t of [q, k, v, dout]) t.release();
  }
  if (o.torch ?? true) {
    log(
      'PyTorch peers (SDPA FlashAttention-2 and cuDNN for causal and full masks, FlexAttention for masks other than full):',
    );
    try {
      const { info, lines } = await runPeer(o.python ?? 'python3', configs, log);
      for (const l of lines) {
        if (!l.samples) continue;
        const total = flops.get(key(l.S, l.mask, l.pass))!;
        const med = summarize(l.samples).median;
        records.push(
          makeRecord(
            'kernel',
            l.name,
            { pass: l.pass, S: l.S, B: 1, H, D, mask: l.mask, dtype },
            'ms',
            l.samples,
            { tflops: total / (med * 1e-3) / 1e12 },
            { torch: info.torch, cudnn: info.cudnn },
          ),
        );
      }
    } catch (e) {
      log(`  no PyTorch peers: ${(e as Error).message}`);
    }
  }
  log(table(records));
  if (o.outDir !== null && records.length > 0) log(`records: ${writeRecords(o.outDir ?? 'bench/results', records)}`);
  return records;
}

/** The summary table: TFLOP/s of weft and the peers per configuration, and weft's ratios. */
function table(records: readonly BenchRecord[]): string {
  const rows = new Map<string, Map<string, number>>();
  const mw = Math.max(6, ...records.map((r) => String((r.config as { mask: string }).mask).length));
  for (const r of records) {
    const c = r.config as { S: number; mask: string; pass: string };
    const k = `${String(c.S).padStart(7)}  ${c.mask.padEnd(mw)}  ${c.pass.padEnd(7)}`;
    if (!rows.has(k)) rows.set(k, new Map());
    rows.get(k)!.set(r.name, r.derived?.tflops ?? NaN);
  }
  const f = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(1)).padStart(10);
  const ratio = (a?: number, b?: number): string => (a && b ? (a / b).toFixed(2) : '—').padStart(8);
  const out = [
    `${'S'.padStart(7)}  ${'mask'.padEnd(mw)}  ${'pass'.padEnd(7)}${'weft'.padStart(10)}${'flash-2'.padStart(10)}${'cuDNN'.padStart(10)}${'flex'.padStart(10)}${'×flash'.padStart(8)}${'×cuDNN'.padStart(8)}${'×flex'.padStart(8)}   (TFLOP/s; — = not run, see above)`,
  ];
  for (const [k, m] of rows) {
    const w = m.get('weft'),
      fl = m.get('sdpa-flash'),
      cu = m.get('sdpa-cudnn'),
      fx = m.get('flex');
    out.push(`${k}${f(w)}${f(fl)}${f(cu)}${f(fx)}${ratio(w, fl)}${ratio(w, cu)}${ratio(w, fx)}`);
  }
  return out.join('\n');
}
