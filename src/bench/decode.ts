// `weft bench decode`: attention of a batch's new tokens to its KV cache on one GPU — the
// decode step, where time is the read of K and V. weft's split-K decode kernel (reached through
// CudaKernel.forward, as the strategies reach it) against PyTorch SDPA's FlashAttention-2 and
// cuDNN backends and FlexAttention (bench/peers/decode_peer.py) on the same configurations in the
// same invocation, each reported as the K/V bytes of the cache read per second, beside the
// device's copy rate measured in the same run (`weft bench ops`' copy of 1 GiB).
//
// A configuration: B sequences of P cached tokens each get T new ones (their K/V appended to the
// cache, every new token seeing the whole cache and the new tokens up to itself). weft packs the
// batch as one block with a document-causal view; PyTorch gets [B, H, T, D] queries and
// [B, Hkv, P + T, D] keys and values. Bytes read = B · (P + T) · Hkv · D · 2 (K and V) · 2 bytes.
// Inputs are random on the device; the view is prepared once (a decode loop reuses its cache's
// views), and that first call is timed and recorded apart. A sample times `reps` calls back to
// back (about a millisecond of work) and divides, for weft and the peers alike: the GPU's time per
// step, with the host's enqueueing hidden behind it as in a decode loop that runs ahead. The
// timing event follows one untimed lead call, so the GPU is busy from the start of the sample
// while the host enqueues (else the first call's host latency would count as GPU time).
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import { openCuda } from '../backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { defaultScale } from '../kernel/kernel.js';
import { MaskGrid } from '../mask/grid.js';
import { maskView, type MaskView } from '../mask/view.js';
import { benchOps } from './ops.js';
import { peerScript, streamPeer } from './peer.js';
import { type BenchRecord, makeRecord, recordFile, summarize, writeRecords } from './record.js';

export interface DecodeBenchOptions {
  batches?: readonly number[];
  contexts?: readonly number[];
  newTokens?: readonly number[];
  heads?: number;
  kvHeads?: number;
  headDim?: 64 | 128;
  dtype?: 'bf16' | 'f16';
  /** contexts at which FlexAttention runs too (each shape compiles; default: all) */
  flexContexts?: readonly number[];
  iters?: number;
  warmup?: number;
  torch?: boolean;
  python?: string;
  outDir?: string | null;
  log?: (line: string) => void;
}

export interface DecodeConfig {
  B: number;
  P: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  flex: boolean;
  warmup: number;
  iters: number;
  reps: number;
}

/** Calls per sample: about a millisecond of reading at 4 TB/s. */
export function repsFor(bytes: number): number {
  return Math.max(1, Math.min(64, Math.round(1e-3 / (bytes / 4e12))));
}

/** K/V bytes one decode step reads. */
export function decodeBytes(c: { B: number; P: number; T: number; Hkv: number; D: number }, elem = 2): number {
  return c.B * (c.P + c.T) * c.Hkv * c.D * 2 * elem;
}

/** The packed view of a configuration: the last T positions of each of B documents of P + T tokens. */
export function decodeView(B: number, P: number, T: number): MaskView {
  const L = P + T,
    S = B * L;
  const cu = Array.from({ length: B + 1 }, (_, i) => i * L);
  const grid = MaskGrid.build({ kind: 'document', cuSeqlens: cu, inner: { kind: 'causal' } }, S);
  const qPos = new Int32Array(B * T),
    kPos = new Int32Array(S);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) qPos[b * T + t] = b * L + P + t;
  for (let i = 0; i < S; i++) kPos[i] = i;
  return maskView(grid, qPos, kPos);
}

interface PeerLine {
  B: number;
  P: number;
  T: number;
  name: string;
  samples?: number[];
  error?: string;
  form?: string;
}

function runPeer(
  python: string,
  configs: readonly DecodeConfig[],
  onLine: (l: PeerLine, info: Record<string, unknown>) => void,
): Promise<unknown> {
  return streamPeer<PeerLine>(python, peerScript('decode_peer.py'), JSON.stringify({ configs }), onLine);
}

export async function benchDecode(o: DecodeBenchOptions = {}): Promise<BenchRecord[]> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const batches = o.batches ?? [1, 4, 16],
    contexts = o.contexts ?? [32768, 131072, 1048576],
    news = o.newTokens ?? [1, 4, 8];
  const H = o.heads ?? 32,
    Hkv = o.kvHeads ?? 8,
    D = o.headDim ?? 128,
    dtype = o.dtype ?? 'bf16';
  const flexAt = new Set(o.flexContexts ?? contexts);
  const rt = await openCuda();
  log(
    `weft bench decode on ${rt.info.name} (${rt.info.sms} SMs, driver ${rt.info.driverVersion}, NVRTC ${rt.info.nvrtcVersion}): H=${H} Hkv=${Hkv} D=${D} ${dtype}`,
  );

  // the copy rate of this device, in this run
  const ops = await benchOps({
    ops: ['copy'],
    sizes: [1 << 30],
    iters: 10,
    warmup: 2,
    outDir: null,
    log: () => undefined,
  });
  const copy = ops.find((r) => r.name === 'copy' && (r.config as { bytes: number }).bytes === 1 << 30)!;
  const copyGBps = copy.derived!.GBps!;
  log(`device copy rate (1 GiB copy, read + write): ${(copyGBps / 1000).toFixed(2)} TB/s`);

  const kernel = new CudaKernel(rt);
  const rand = new DeviceRandom(rt);
  const records: BenchRecord[] = [];
  const configs: DecodeConfig[] = [];
  // weft's records are on disk before the peers start; the file is rewritten whole at the end
  const dir = o.outDir ?? 'bench/results',
    file = o.outDir === null ? undefined : recordFile(dir, 'decode');
  const save = (): void => {
    if (file && records.length) writeRecords(dir, [...records, copy], file);
  };
  const t0 = rt.event(true),
    t1 = rt.event(true);
  const scale = defaultScale(D);
  for (const P of contexts) {
    for (const B of batches) {
      const S = B * (P + Math.max(...news)),
        need = 2 * S * Hkv * D * 2;
      rt.allocator.emptyCache();
      if (need > 0.9 * rt.memInfo().free) {
        log(
          `  B=${B} P=${P}: skipped, its K/V (${(need / 2 ** 30).toFixed(1)} GiB) does not fit the GPU's free memory`,
        );
        continue;
      }
      const k = rand.tensor(dtype, [S, Hkv, D], 2),
        v = rand.tensor(dtype, [S, Hkv, D], 3);
      for (const T of news) {
        const warmup = o.warmup ?? 3,
          iters = o.iters ?? 20,
          bytes = decodeBytes({ B, P, T, Hkv, D }),
          reps = repsFor(bytes);
        const cfg: DecodeConfig = { B, P, T, H, Hkv, D, flex: flexAt.has(P), warmup, iters, reps };
        configs.push(cfg);
        const view = decodeView(B, P, T),
          tk = B * (P + T);
        const q = rand.tensor(dtype, [B * T, H, D], 1);
        const kb = k.view(0, [tk, Hkv, D]),
          vb = v.view(0, [tk, Hkv, D]);
        const once = (): void => {
          const st = kernel.forward({ q, k: kb, v: vb, view, scale });
          (st.out as CudaTensor).release();
          (st.lse as CudaTensor).release();
        };
        // the first call prepares the view (uploads, tile ranges) and compiles: timed apart
        t0.record(rt.compute);
        once();
        t1.record(rt.compute);
        await rt.waitEvent(t1);
        const firstMs = t1.since(t0);
        for (let i = 0; i < warmup * reps; i++) once();
        await rt.synchronize();
        const samples: number[] = [],
          host: number[] = [];
        for (let i = 0; i < iters; i++) {
          once(); // a lead call: the GPU runs it while the host enqueues the timed ones
          t0.record(rt.compute);
          const h0 = performance.now();
          for (let j = 0; j < reps; j++) once();
          host.push(((performance.now() - h0) * 1000) / reps);
          t1.record(rt.compute);
          await rt.waitEvent(t1);
          samples.push(t1.since(t0) / reps);
        }
        q.release();
        const med = summarize(samples).median,
          GBps = bytes / (med * 1e-3) / 1e9;
        log(
          `  weft        B=${B} P=${P} T=${T}: median ${med.toFixed(3)} ms, ${(GBps / 1000).toFixed(2)} TB/s (${(GBps / copyGBps).toFixed(2)} × copy)`,
        );
        records.push(
          makeRecord(
            'decode',
            'weft',
            { B, P, T, H, Hkv, D, dtype },
            'ms',
            samples,
            { GBps, copyRatio: GBps / copyGBps },
            {
              warmup,
              reps,
              firstCallMs: firstMs,
              hostUsPerCall: summarize(host).median,
              copyGBps,
              gpu: rt.info.name,
              nvrtc: rt.info.nvrtcVersion,
            },
          ),
        );
      }
      k.release();
      v.release();
    }
  }
  save();
  if (o.torch ?? true) {
    if (dtype !== 'bf16') log('  (the PyTorch peer runs bf16 only; skipped)');
    else {
      rt.allocator.emptyCache(); // the peer needs the memory
      log('PyTorch peers (SDPA FlashAttention-2, cuDNN; FlexAttention):');
      // each measurement is recorded (and the file rewritten) as it arrives
      const onLine = (l: PeerLine, info: Record<string, unknown>): void => {
        const cfg = { B: l.B, P: l.P, T: l.T, H, Hkv, D, dtype };
        if (!l.samples) {
          log(`  ${l.name.padEnd(11)} B=${l.B} P=${l.P} T=${l.T}: cannot run: ${l.error}`);
          // a peer that cannot run: its reason goes beside weft's measurement
          const w = records.find(
            (r) => r.name === 'weft' && r.config.B === l.B && r.config.P === l.P && r.config.T === l.T,
          );
          if (w) {
            const extra = (w.extra ??= {}),
              unavailable = (extra.unavailable ??= {}) as Record<string, string | undefined>;
            unavailable[l.name] = l.error;
          }
          return;
        }
        const med = summarize(l.samples).median,
          GBps = decodeBytes({ B: l.B, P: l.P, T: l.T, Hkv, D }) / (med * 1e-3) / 1e9;
        log(`  ${l.name.padEnd(11)} B=${l.B} P=${l.P} T=${l.T}: median ${med.toFixed(3)} ms (${l.form})`);
        records.push(
          makeRecord(
            'decode',
            l.name,
            cfg,
            'ms',
            l.samples,
            { GBps, copyRatio: GBps / copyGBps },
            {
              form: l.form,
              reps: configs.find((c) => c.B === l.B && c.P === l.P && c.T === l.T)?.reps,
              torch: info.torch,
              cudnn: info.cudnn,
              copyGBps,
            },
          ),
        );
        save();
      };
      try {
        await runPeer(o.python ?? 'python3', configs, onLine);
      } catch (e) {
        log(`  ${(e as Error).message}`);
      }
    }
  }
  save();
  log(decodeTable(records));
  if (file) log(`records: ${file}`);
  records.push(copy); // the copy rate the ratios refer to (kind 'ops'), last in the file too
  return records;
}

/** TB/s of weft and the peers per configuration, weft ÷ PyTorch's best, and weft ÷ the copy rate. */
export function decodeTable(records: readonly BenchRecord[]): string {
  const rows = new Map<string, Map<string, number>>();
  for (const r of records) {
    if (r.kind !== 'decode') continue;
    const c = r.config as { B: number; P: number; T: number };
    const k = `${String(c.B).padStart(3)} ${String(c.P).padStart(8)} ${String(c.T).padStart(3)}`;
    if (!rows.has(k)) rows.set(k, new Map());
    rows.get(k)!.set(r.name, (r.derived?.GBps ?? NaN) / 1000);
    if (r.name === 'weft') rows.get(k)!.set('copy', r.derived!.copyRatio!);
  }
  const f = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(2)).padStart(8);
  const out = [
    `${'B'.padStart(3)} ${'P'.padStart(8)} ${'T'.padStart(3)}${'weft'.padStart(8)}${'flash-2'.padStart(8)}${'cuDNN'.padStart(8)}${'flex'.padStart(8)}${'×best'.padStart(8)}${'×copy'.padStart(8)}   (TB/s of K/V read)`,
  ];
  for (const [k, m] of rows) {
    const w = m.get('weft');
    const peers = ['sdpa-flash', 'sdpa-cudnn', 'flex']
      .map((n) => m.get(n))
      .filter((x): x is number => x !== undefined && !Number.isNaN(x));
    const best = peers.length ? Math.max(...peers) : undefined;
    out.push(
      `${k}${f(w)}${f(m.get('sdpa-flash'))}${f(m.get('sdpa-cudnn'))}${f(m.get('flex'))}${f(w && best ? w / best : undefined)}${f(m.get('copy'))}`,
    );
  }
  return out.join('\n');
}
