// `weft run --strategy varlen`: a packed variable-length batch through the dispatcher and the
// sparse K/V executor on N CPU ranks. The batch comes from --cu-seqlens, --lengths FILE, or a seeded
// distribution (--docs N or --seq S with --dist longtail|magi); --dry-plan prints the dispatch plan
// and runs nothing. JSON: the plan's figures, weft run's stats (perRank[].bytesSent, balance, …)
// with each rank's tokens, and with --check {errors, tolerance, ok}.
import { referenceAttention } from '../../kernel/reference.js';
import { MaskGrid } from '../../mask/grid.js';
import { maskName } from '../../mask/spec.js';
import { runVarlen } from '../../run/varlen.js';
import { type HostTensor, relError } from '../../tensor/host.js';
import { randn, Rng } from '../../tensor/random.js';
import { bytesPerElement } from '../../tensor/dtype.js';
import { UserError } from '../../errors.js';
import { type Batch, batchMaskSpec, docMaskOf, lengthsFrom } from '../../varlen/batch.js';
import { dispatch, type DispatchPlan } from '../../varlen/dispatch.js';
import { optInt, timeoutMs } from '../layout-options.js';
import { parseChoice, parseNumber } from '../options.js';
import { table } from '../../report/table.js';
import { need, type RunOpts } from '../run-setup.js';

export type VarlenOpts = RunOpts;

const TOLERANCE = { f64: 1e-10, f32: 1e-5 } as const;

/** The plan as scripts read it: per-document placement, per-rank load, transfers in rows and bytes. */
export function planJson(plan: DispatchPlan, rowBytes: number): object {
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
  };
}

function planTable(plan: DispatchPlan, rowBytes: number): string {
  const groups = plan.docs.filter((d) => d.mode === 'group');
  const lines = [
    `dispatch of ${plan.lengths.length} documents (${plan.S} tokens) on ${plan.world} ranks: ${plan.docs.length - groups.length} local, ${groups.length} on groups; ` +
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
        groups
          .slice(0, 20)
          .map((d) => ({ doc: d.doc, start: d.start, length: d.length, mask: d.mask, ranks: d.ranks.join(',') })),
      ) + (groups.length > 20 ? `… ${groups.length - 20} more groups\n` : ''),
    );
  return lines.join('\n');
}

export async function runVarlenCommand(o: VarlenOpts): Promise<void> {
  const world = need(optInt(o.world, 'world'), 'world');
  for (const f of ['shard', 'ulysses', 'ring', 'inner', 'placement'] as const)
    if (o[f] !== undefined)
      throw new UserError(`--${f} does not apply to --strategy varlen (the dispatcher places the tokens)`);
  const H = need(optInt(o.heads, 'heads'), 'heads'),
    Hkv = optInt(o.kvHeads, 'kv-heads') ?? H,
    D = need(optInt(o.dim, 'dim'), 'dim');
  if (H % Hkv !== 0) throw new UserError(`${H} heads are not a multiple of ${Hkv} KV heads`);
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
  const slack = o.tokenSlack === undefined ? undefined : parseNumber(o.tokenSlack, '--token-slack', { min: 0 });
  const plan = dispatch(batch, { world, maxTokens: optInt(o.rankTokens, 'rank-tokens'), slack });
  const dtype = parseChoice(o.dtype ?? 'f32', '--dtype', ['f64', 'f32'] as const);
  const rowBytes = 2 * Hkv * D * bytesPerElement(dtype); // one K row and one V row
  if (o.dryPlan) {
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ strategy: 'varlen', dims: { S: plan.S, H, Hkv, D }, mask: o.mask, dtype, seed, plan: planJson(plan, rowBytes) })}\n`
        : planTable(plan, rowBytes),
    );
    return;
  }
  if (o.backend === 'cuda') throw new UserError('--strategy varlen runs on CPU ranks only so far');
  const S = plan.S,
    rng = new Rng(seed);
  const mask = batchMaskSpec(batch);
  const scale = o.scale === undefined ? 1 / Math.sqrt(D) : Number(o.scale);
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new UserError(`--scale must be a positive number, not '${o.scale}'`);
  const q = randn(rng, dtype, [S, H, D]),
    k = randn(rng, dtype, [S, Hkv, D]),
    v = randn(rng, dtype, [S, Hkv, D]);
  const dout = o.backward ? randn(rng, dtype, [S, H, D]) : undefined;
  const res = await runVarlen({ q, k, v, dout, mask, scale, dtype }, plan, { timeoutMs: timeoutMs(o) });
  let check: { errors: Record<string, number>; tolerance: number; ok: boolean } | undefined;
  if (o.check) {
    const ref = referenceAttention(q, k, v, MaskGrid.build(mask, S), scale, dout);
    const errors: Record<string, number> = {};
    for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
      const got = res[name] as HostTensor | undefined,
        want = ref[name];
      if (got && want) errors[name] = relError(got, want);
    }
    check = { errors, tolerance: TOLERANCE[dtype], ok: Object.values(errors).every((e) => e <= TOLERANCE[dtype]) };
  }
  const s = res.stats;
  if (o.json) {
    const { docs: _d, pieces: _p, transfers: _t, ...summary } = planJson(plan, rowBytes) as Record<string, unknown>;
    process.stdout.write(
      `${JSON.stringify({ layout: { strategy: 'varlen', world }, dims: { S, H, Hkv, D }, mask: maskName(mask), dtype, seed, plan: summary, stats: s, check })}\n`,
    );
  } else {
    const lines = [
      planTable(plan, rowBytes),
      `time: forward ${s.forwardMs.toFixed(1)} ms${res.dq ? `, backward ${s.backwardMs.toFixed(1)} ms` : ''} (slowest rank); work balance (max/mean area) ${s.balance.toFixed(3)}, tokens ${s.tokenBalance.toFixed(3)}`,
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
        })),
      ),
    ];
    if (check)
      lines.push(
        `check against the f64 reference (relative error, tolerance ${check.tolerance}): ` +
          Object.entries(check.errors)
            .map(([n, e]) => `${n} ${e.toExponential(2)}`)
            .join(', ') +
          (check.ok ? ' — ok' : ' — FAILED'),
      );
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (check && !check.ok) process.exitCode = 1;
}
