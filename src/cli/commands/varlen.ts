// `weft run --strategy varlen`: a packed variable-length batch through the dispatcher and the
// sparse K/V executor — on N CPU ranks (worker threads, or one process per rank under weft launch,
// over TCP), or on GPUs (--backend cuda: one GPU alone for --world 1, else one process per GPU under
// weft launch, over NCCL). The batch comes from --cu-seqlens, --lengths FILE, or a seeded
// distribution (--docs N or --seq S with --dist longtail|magi). The dispatch is the planner's choice
// by priced time (--dispatch auto: head-parallel documents, routes and visits priced on H200s) or
// the plain one (--dispatch plain); --head-docs forces documents head-parallel. --dry-plan prints
// the plan, what was weighed and why, and runs nothing. Under a launcher every rank computes the
// same plan and rank 0 alone reports. JSON: the plan's figures, the choice (`dispatch`), weft run's
// stats (perRank[].bytesSent, balance, …) with each rank's tokens, and with --check
// {errors, tolerance, ok}.
import { referenceAttention } from '../../kernel/reference.js';
import { MaskGrid } from '../../mask/grid.js';
import { maskName } from '../../mask/spec.js';
import { runVarlen, runVarlenLaunched, type VarlenStats } from '../../run/varlen.js';
import type { GpuVarlenCheck, VarlenGpuStats } from '../../run/varlen-gpu.js';
import { resolveBackend } from '../../backends/index.js';
import { connectStore, distEnv } from '../../launch/env.js';
import { randn, Rng } from '../../tensor/random.js';
import { bytesPerElement, type DType } from '../../tensor/dtype.js';
import { UserError } from '../../errors.js';
import { type Batch, batchMaskSpec, batchTokens, docMaskOf, lengthsFrom } from '../../varlen/batch.js';
import { type DispatchOptions, type DispatchPlan, type HeadChoice, rankTokenLimit } from '../../varlen/dispatch.js';
import {
  dispatchPriced,
  headShape,
  VARLEN_INTER_NODE,
  type VarlenDims,
  varlenPricing,
  type WeighedDispatch,
} from '../../plan/varlen.js';
import { calibrationOption } from './plan.js';
import { optInt, timeoutMs } from '../layout-options.js';
import { parseChoice, parseNumber } from '../options.js';
import { table } from '../../report/table.js';
import { need, type RunOpts } from '../run-setup.js';
import { type Check, checkLine, checkTensors } from '../check.js';

export type VarlenOpts = RunOpts;

/** The plan as scripts read it: per-document placement, per-rank load, transfers in rows and bytes. */
function dispatchJson(plan: DispatchPlan, rowBytes: number): object {
  return {
    world: plan.world,
    S: plan.S,
    documents: plan.lengths.length,
    maxTokens: plan.maxTokens,
    granularity: plan.granularity,
    balance: plan.balance,
    bytesMoved: plan.transfers.reduce((s, t) => s + t.rows, 0) * rowBytes,
    docs: plan.docs,
    pieces: plan.pieces,
    ranks: plan.ranks.map((r) => ({ ...r, recvBytes: r.recvRows * rowBytes, sendBytes: r.sendRows * rowBytes })),
    transfers: plan.transfers,
    visits: plan.visits,
  };
}

/** How the dispatch was chosen: the cluster it was priced on, what was weighed, which was taken. */
interface DispatchReport {
  how: 'auto' | 'plain';
  pricedOn: {
    gpu: 'h200';
    gpusPerNode: number;
    interNode?: typeof VARLEN_INTER_NODE;
    calibration: string;
  };
  /** index into `considered` of the plan taken */
  chosen: number;
  considered: WeighedDispatch[];
}

/** The dispatch the options ask for: the planner's choice by priced time, or the plain one (--dispatch). */
function chooseDispatch(
  o: VarlenOpts,
  batch: Batch,
  world: number,
  dims: VarlenDims,
): { plan: DispatchPlan; report: DispatchReport } {
  const how = parseChoice(o.dispatch ?? 'auto', '--dispatch', ['auto', 'plain'] as const);
  const slack = o.tokenSlack === undefined ? undefined : parseNumber(o.tokenSlack, '--token-slack', { min: 0 });
  const opts: DispatchOptions = { world, maxTokens: optInt(o.rankTokens, 'rank-tokens'), slack };
  const S = batchTokens(batch);
  const pricing = varlenPricing(world, S, dims, calibrationOption(o.calibration));
  if (o.headDocs !== undefined)
    opts.heads = headDocs(o.headDocs, batch, dims.H, (doc) =>
      headShape(batch, doc, world, dims.H, pricing.gpusPerNode, rankTokenLimit(S, opts)),
    );
  const r = dispatchPriced(batch, opts, dims, pricing.rates, pricing.net, pricing.gpusPerNode, how === 'plain');
  const nodes = Math.ceil(world / pricing.gpusPerNode);
  if (o.headDocs !== undefined) r.considered[r.chosen]!.note = 'named by --head-docs';
  return {
    plan: r.plan,
    report: {
      how,
      pricedOn: {
        gpu: 'h200',
        gpusPerNode: pricing.gpusPerNode,
        ...(nodes > 1 ? { interNode: VARLEN_INTER_NODE } : {}),
        calibration: o.calibration ?? 'shipped',
      },
      chosen: r.chosen,
      considered: r.considered,
    },
  };
}

/** --head-docs DOC[:U[xR]],…: documents forced head-parallel; a shape left out is `shape`'s (headShape). */
function headDocs(text: string, batch: Batch, H: number, shape: (doc: number) => HeadChoice): HeadChoice[] {
  const out = text.split(',').map((item) => headDoc(item, batch, H, shape));
  const twice = out.find((c, i) => out.findIndex((x) => x.doc === c.doc) !== i);
  if (twice) throw new UserError(`--head-docs: document ${twice.doc} named twice`);
  return out;
}

function headDoc(item: string, batch: Batch, H: number, shape: (doc: number) => HeadChoice): HeadChoice {
  const m = /^\s*(\d+)(?::(\d+)(?:x(\d+))?)?\s*$/.exec(item);
  if (!m)
    throw new UserError(
      `--head-docs: '${item}' is not DOC, DOC:U or DOC:UxR (a document index from 0, Ulysses and ring degrees)`,
    );
  const doc = Number(m[1]);
  if (doc >= batch.lengths.length)
    throw new UserError(`--head-docs: no document ${doc} (the batch has ${batch.lengths.length}, numbered from 0)`);
  const auto = m[2] === undefined ? shape(doc) : undefined;
  const ulysses = auto?.ulysses ?? Number(m[2]),
    ring = auto?.ring ?? Number(m[3] ?? 1);
  if (ulysses < 1 || ring < 1) throw new UserError(`--head-docs ${item.trim()}: degrees must be at least 1`);
  if (H % ulysses !== 0)
    throw new UserError(`--head-docs ${item.trim()}: Ulysses ${ulysses} does not divide the ${H} heads`);
  return { doc, ulysses, ring };
}

/** The choice as a table: every dispatch weighed, its routes, priced step and area balance. */
function choiceTable(r: DispatchReport, world: number): string {
  const p = r.pricedOn;
  const where = `${world} H200s, ${p.gpusPerNode} a node (NVLink)${p.interNode ? `, ${p.interNode.GBps} GB/s a GPU across nodes` : ''}, ${p.calibration} calibration`;
  const head = `dispatch: ${r.how}, priced on ${where} (one layer, forward + backward, bf16):`;
  const rows = r.considered.map((c, i) => ({
    'head-parallel': headsText(c.heads),
    routes: routesText(c),
    'step ms': c.stepMs === undefined ? '-' : c.stepMs.toPrecision(5),
    'area balance': c.areaBalance === undefined ? '-' : c.areaBalance.toFixed(3),
    chosen: i === r.chosen ? '←' : '',
    note: c.note ?? '',
  }));
  return `${head}\n${table(rows)}`;
}

/** Documents (Ulysses × ring), the first three of many: the JSON lists them all. */
function headsText(heads: readonly HeadChoice[]): string {
  if (!heads.length) return 'none';
  const some = heads.slice(0, 3).map((h) => `${h.doc} (${h.ulysses}×${h.ring ?? 1})`);
  return heads.length > 3 ? `${heads.length} docs: ${some.join(' ')} …` : some.join(' ');
}

function routesText(c: WeighedDispatch): string {
  if (c.chunks === undefined) return '-';
  const parts = [`star in ${c.chunks} round${c.chunks > 1 ? 's' : ''}`];
  if (c.relayGroups) parts.push(`relay ${c.relayGroups} group${c.relayGroups > 1 ? 's' : ''}`);
  if (c.visits) parts.push(`${c.visits} visit${c.visits > 1 ? 's' : ''}`);
  return `${parts.join(', ')}${c.routesPriced ? ' (priced)' : ''}`;
}

function planTable(plan: DispatchPlan, rowBytes: number, choice: DispatchReport): string {
  const groups = plan.docs.filter((d) => d.mode !== 'local');
  const count = (mode: string): number => groups.filter((d) => d.mode === mode).length;
  const lines = [
    choiceTable(choice, plan.world),
    `dispatch of ${plan.lengths.length} documents (${plan.S} tokens) on ${plan.world} ranks: ${plan.docs.length - groups.length} local, ${count('group')} on groups, ${count('heads')} head-parallel; ` +
      `balance area ${plan.balance.area.toFixed(3)}, tokens ${plan.balance.tokens.toFixed(3)} (limit ${plan.maxTokens} tokens a rank)`,
    `K/V moved (forward): ${((plan.transfers.reduce((s, t) => s + t.rows, 0) * rowBytes) / 2 ** 20).toFixed(2)} MiB in ${plan.transfers.length} transfers`,
    '',
    table(
      plan.ranks.map((r) => ({
        rank: r.rank,
        tokens: r.tokens,
        area: r.area,
        'local area': r.localArea,
        'recv rows': r.recvRows,
        'send rows': r.sendRows,
        'peak rows': r.peakRows,
      })),
    ),
  ];
  if (groups.length)
    lines.push(
      table(
        groups.slice(0, 20).map((d) => ({
          doc: d.doc,
          start: d.start,
          length: d.length,
          mask: d.mask,
          mode: d.mode,
          ranks: d.ranks.join(','),
          'ulysses × ring': d.heads ? `${d.heads.ulysses}×${d.heads.ring}` : '-',
          relay: d.relay ? 'yes' : '-',
        })),
      ) + (groups.length > 20 ? `… ${groups.length - 20} more groups\n` : ''),
    );
  if (plan.visits.length)
    lines.push(
      `visits (queries sent to the keys' owner, partial results back): ${plan.visits
        .slice(0, 20)
        .map((v) => `${v.from}→${v.to} ${v.rows} rows`)
        .join(', ')}${plan.visits.length > 20 ? `, … ${plan.visits.length - 20} more` : ''}\n`,
    );
  return lines.join('\n');
}

export async function runVarlenCommand(o: VarlenOpts): Promise<void> {
  const world = need(optInt(o.world, 'world'), 'world');
  for (const f of ['shard', 'ulysses', 'ring', 'inner', 'placement'] as const)
    if (o[f] !== undefined)
      throw new UserError(`--${f} does not apply to --strategy varlen (the dispatcher places the tokens)`);
  if (o.timeline !== undefined) throw new UserError('--timeline is not recorded for --strategy varlen');
  const H = need(optInt(o.heads, 'heads'), 'heads'),
    Hkv = optInt(o.kvHeads, 'kv-heads') ?? H,
    D = need(optInt(o.dim, 'dim'), 'dim');
  if (H % Hkv !== 0) throw new UserError(`${H} heads are not a multiple of ${Hkv} KV heads`);
  const backend = parseChoice(o.backend ?? 'auto', '--backend', ['auto', 'cpu', 'cuda'] as const);
  const seed = optInt(o.seed, 'seed', 0)!;
  const lengths = lengthsFrom({
    cuSeqlens: o.cuSeqlens,
    lengths: o.lengths,
    docs: optInt(o.docs, 'docs'),
    dist: o.dist,
    seq: optInt(o.seq, 'seq'),
    seed,
  });
  const docMask = docMaskOf(o.mask);
  const batch: Batch = { lengths, masks: lengths.map(() => docMask) };
  const { plan, report: choice } = chooseDispatch(o, batch, world, { H, Hkv, D });
  const dist = distEnv();
  const lead = (dist?.rank ?? 0) === 0;
  const scale = o.scale === undefined ? 1 / Math.sqrt(D) : Number(o.scale);
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new UserError(`--scale must be a positive number, not '${o.scale}'`);
  if (o.dryPlan) {
    const dtype = backend === 'cuda' ? gpuDtype(o) : cpuDtype(o);
    if (lead)
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ strategy: 'varlen', dims: { S: plan.S, H, Hkv, D }, mask: o.mask, dtype, seed, dispatch: choice, plan: dispatchJson(plan, rowBytes(Hkv, D, dtype)) })}\n`
          : planTable(plan, rowBytes(Hkv, D, dtype), choice),
      );
    return;
  }
  const mask = batchMaskSpec(batch);
  const head = { world, dims: { S: plan.S, H, Hkv, D }, mask: maskName(mask), seed };
  if (await onGpu(backend, dist !== undefined, world)) {
    const dtype = gpuDtype(o);
    if (D !== 64 && D !== 128) throw new UserError(`--dim ${D}: the GPU kernels take head dims 64 and 128`);
    const { openGpuWorld, runVarlenGpu } = await import('../../run/varlen-gpu.js');
    const iters = need(optInt(o.iters, 'iters', 1), 'iters'),
      warmup = need(optInt(o.warmup, 'warmup', 0), 'warmup');
    const g = await openGpuWorld(world);
    let res;
    try {
      res = await runVarlenGpu(g, {
        plan,
        H,
        Hkv,
        D,
        mask,
        dtype,
        scale,
        backward: o.backward,
        check: o.check === true,
        warmup,
        iters,
        progress: (i, ms) => {
          // long iterations say when each is done; short ones stay quiet
          if (g.rank === 0 && ms > 2000)
            process.stderr.write(
              `weft: iteration ${i + 1} of ${warmup + iters}${i < warmup ? ' (warm-up)' : ''}: ${(ms / 1000).toFixed(1)} s\n`,
            );
        },
      });
    } finally {
      await g.close();
    }
    if (res) report(o, { ...head, backend: 'cuda', dtype }, plan, choice, res.stats, res.check);
    return;
  }

  const dtype = cpuDtype(o);
  const rng = new Rng(seed);
  const S = plan.S;
  const q = randn(rng, dtype, [S, H, D]),
    k = randn(rng, dtype, [S, Hkv, D]),
    v = randn(rng, dtype, [S, Hkv, D]);
  const dout = o.backward ? randn(rng, dtype, [S, H, D]) : undefined;
  const problem = { q, k, v, dout, mask, scale, dtype };
  let res;
  if (dist) {
    // one CPU rank per launched process, over TCP; every rank holds the same plan and inputs
    const store = await connectStore(dist, timeoutMs(o));
    try {
      res = await runVarlenLaunched(problem, plan, dist, store, { timeoutMs: timeoutMs(o) });
    } finally {
      store.close();
    }
    if (!res) return;
  } else res = await runVarlen(problem, plan, { timeoutMs: timeoutMs(o) });
  const check = o.check
    ? checkTensors(res, referenceAttention(q, k, v, MaskGrid.build(mask, S), scale, dout), dtype)
    : undefined;
  report(o, { ...head, backend: 'cpu', dtype }, plan, choice, res.stats, check);
}

const cpuDtype = (o: VarlenOpts) => parseChoice(o.dtype ?? 'f32', '--dtype', ['f64', 'f32'] as const);
const gpuDtype = (o: VarlenOpts) => parseChoice(o.dtype ?? 'bf16', '--dtype', ['bf16', 'f16'] as const);
/** One K row and one V row. */
const rowBytes = (Hkv: number, D: number, dtype: DType): number => 2 * Hkv * D * bytesPerElement(dtype);

/** GPUs when asked for, or (auto) under a launcher on a machine with CUDA, as weft run decides. */
async function onGpu(backend: 'auto' | 'cpu' | 'cuda', launched: boolean, world: number): Promise<boolean> {
  if (backend === 'cuda') {
    // the GPU module loads CUDA only when a GPU is opened: CPU runs never get here
    (await import('../../run/varlen-gpu.js')).checkGpuWorld(world);
    await resolveBackend('cuda'); // a one-line error when there is none
    return true;
  }
  if (backend === 'cpu' || !launched) return false;
  const { backend: b, skipped } = await resolveBackend('auto');
  if (b.name === 'cuda') return true;
  for (const s of skipped)
    process.stderr.write(`weft run: ${s.name} backend unavailable (${s.reason}); using CPU ranks\n`);
  return false;
}

function report(
  o: VarlenOpts,
  h: {
    world: number;
    dims: { S: number; H: number; Hkv: number; D: number };
    mask: string;
    seed: number;
    backend: 'cpu' | 'cuda';
    dtype: DType;
  },
  plan: DispatchPlan,
  choice: DispatchReport,
  s: VarlenStats | VarlenGpuStats,
  check: Check | GpuVarlenCheck | undefined,
): void {
  const rb = rowBytes(h.dims.Hkv, h.dims.D, h.dtype);
  if (o.json) {
    const { docs: _d, pieces: _p, transfers: _t, ...summary } = dispatchJson(plan, rb) as Record<string, unknown>;
    const { world, backend, ...rest } = h;
    process.stdout.write(
      `${JSON.stringify({ layout: { strategy: 'varlen', world }, backend, ...rest, dispatch: choice, plan: summary, stats: s, check })}\n`,
    );
  } else {
    const gpu = 'tflopsPerGpu' in s;
    const lines = [
      planTable(plan, rb, choice),
      gpu
        ? `on ${h.world} GPU${h.world > 1 ? 's' : ''}, ${h.dtype}: median ${s.wallMs.toFixed(2)} ms over ${s.iters} iterations (slowest rank), ${s.tflopsPerGpu.toFixed(1)} TFLOP/s per GPU (unmasked area; backward counted 2.5×)`
        : `time: forward ${s.forwardMs.toFixed(1)} ms${o.backward ? `, backward ${s.backwardMs.toFixed(1)} ms` : ''} (slowest rank)`,
      `work balance (max/mean area) ${s.balance.toFixed(3)}, tokens ${s.tokenBalance.toFixed(3)}`,
      '',
      table(
        s.perRank.map((r) => ({
          rank: r.rank,
          tokens: r.tokens,
          'area (×heads)': r.area,
          messages: r.messages,
          'sent B': r.bytesSent,
          'received B': r.bytesReceived,
          'peak held B': r.peakHeldBytes,
          ...('peakDeviceBytes' in r
            ? {
                'fwd ms': r.forwardMs.toFixed(2),
                'bwd ms': o.backward ? r.backwardMs.toFixed(2) : '-',
                'peak GiB': (r.peakDeviceBytes / 2 ** 30).toFixed(2),
              }
            : {}),
        })),
      ),
    ];
    if (check)
      lines.push(
        checkLine(
          check,
          'against the f64 reference',
          'zeroRef' in check && check.zeroRef ? ` (${check.zeroRef.join(', ')}: zero in the reference, absolute)` : '',
        ),
      );
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (check && !check.ok) process.exitCode = 1;
}
