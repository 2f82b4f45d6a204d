// Simulate a layout's schedule event by event: the same phases the analytical model prices
// (src/plan/schedule.ts), run with real dependencies — ring steps start when their block has
// arrived and the previous step is done, transfers queue on the ports they share, accumulators
// follow their blocks — so imbalance and exposed transfers propagate as they would on GPUs.
//
// Which ranks are simulated: tensor-parallel peers and data-parallel replicas do identical
// work, and ring groups with the same pattern of intra/inter-node hops are congruent, so one
// rank stands for each (pattern, ring position); the report names the global rank it stands for.
// The layers of a step are chained when the task count allows (≤ FULL_STEP_TASKS); otherwise one
// layer is simulated and the step is assembled from it (said in the result).
import { UserError } from '../errors.js';
import { collectiveMs, p2pMs } from '../plan/links.js';
import { hopClass, hopShareOf, type PlanLayout, rankOf, ringPatterns } from '../plan/layout.js';
import type { Context, Phase, RingPhase } from '../plan/schedule.js';
import { layerSchedule, microbatches, ringCompute, stepPhases } from '../plan/schedule.js';
import { timing } from '../plan/cost.js';
import type { Progress } from '../plan/progress.js';
import { COMPUTE, Engine, IN_INTER, IN_INTRA, OUT_INTER, OUT_INTRA } from './engine.js';

const FULL_STEP_TASKS = 3_000_000;
/** ranks whose spans are kept for the timeline */
const TRACED_RANKS = 64;
const MAX_TASKS = 60_000_000;

export interface SimRank {
  /** the global rank this simulated rank stands for */
  rank: number;
  /** ranks with the same timeline (tensor, data and congruent ring-group peers) */
  standsFor: number;
  computeMs: number;
  /** time its ports carried its ring transfers out / in */
  sendMs: number;
  recvMs: number;
  /** time in collectives (all-to-alls, all-gathers, gradient sync: exposed) */
  collectiveMs: number;
  finishMs: number;
}

export interface SimResult {
  layerMs: number;
  stepMs: number;
  analyticLayerMs: number;
  analyticStepMs: number;
  /** true when the step was assembled from one simulated layer */
  scaled: boolean;
  tasks: number;
  ranks: SimRank[];
  engine: Engine;
}

/** `share`: of its link's bandwidth, for transfers it sends inside its node (below 1 behind a shared PCIe uplink) */
interface Member {
  pattern: number;
  pos: number;
  u: number;
  d: number;
  node: number;
  share: number;
}

class Builder {
  readonly members: Member[] = [];
  /** when each simulated rank's last task ends (what its next phase waits for) */
  readonly last: number[];
  readonly engine: Engine;
  private readonly r: number;

  constructor(
    readonly ctx: Context,
    readonly l: PlanLayout,
    traced: number,
  ) {
    const cl = ctx.cfg.cluster;
    this.r = l.ring;
    // one simulated ring per hop pattern: find a (u, d) that has it
    const pats = ringPatterns(l, cl);
    const shareOf = hopShareOf(l, cl);
    const keyOf = (u: number, d: number): string => {
      const hops: string[] = [];
      for (let i = 0; i < l.ring; i++)
        hops.push(`${hopClass(l, cl, u, d, i, (i + 1) % l.ring)}${shareOf(rankOf(l, 0, u, i, d))}`);
      return hops.join();
    };
    const found = new Map<string, [number, number]>();
    for (let d = 0; d < Math.min(l.dp, 64) && found.size < pats.length; d++) {
      for (let u = 0; u < l.ulysses && found.size < pats.length; u++) {
        const k = keyOf(u, d);
        if (!found.has(k)) found.set(k, [u, d]);
      }
    }
    [...found.values()].forEach(([u, d], p) => {
      for (let i = 0; i < l.ring; i++) {
        const rank = rankOf(l, 0, u, i, d);
        this.members.push({ pattern: p, pos: i, u, d, node: Math.floor(rank / cl.gpusPerNode), share: shareOf(rank) });
      }
    });
    this.engine = new Engine(this.members.length, traced);
    this.last = this.members.map(() => 0);
  }

  private id(pattern: number, pos: number): number {
    return pattern * this.r + (((pos % this.r) + this.r) % this.r);
  }

  /** A transfer from simulated rank `from` to `to`, ready at `ready`; ms per class cached per phase. */
  private transfer(
    label: number,
    from: number,
    to: number,
    ms: { intra: number; inter: number; bytes: number },
    ready: number,
  ): number {
    const src = this.members[from]!,
      intra = src.node === this.members[to]!.node;
    const t = intra ? (src.share < 1 ? p2pMs(this.ctx.net, ms.bytes, 'intra', src.share) : ms.intra) : ms.inter;
    return this.engine.add(
      'transfer',
      label,
      from,
      intra ? OUT_INTRA : OUT_INTER,
      t,
      ready,
      to,
      intra ? IN_INTRA : IN_INTER,
    );
  }

  private bytesMs(bytes: number): { intra: number; inter: number; bytes: number } {
    return { intra: p2pMs(this.ctx.net, bytes, 'intra'), inter: p2pMs(this.ctx.net, bytes, 'inter'), bytes };
  }

  phase(p: Phase): void {
    const e = this.engine,
      label = e.labelId(p.name);
    if (p.kind === 'compute') {
      for (let k = 0; k < this.members.length; k++)
        this.last[k] = e.add('compute', label, k, COMPUTE, p.ms, this.last[k]!);
      return;
    }
    if (p.kind === 'collective') {
      const ms = collectiveMs(this.ctx.net, p.op, p.bytes, p.group);
      // data-group collectives span every ring position: a barrier; the others wait only for this
      // rank (its Ulysses and tensor peers are congruent images of it)
      const barrier = p.term === 'grad-sync' ? Math.max(...this.last) : 0;
      for (let k = 0; k < this.members.length; k++) {
        this.last[k] = e.addWhole('collective', label, k, ms, Math.max(barrier, this.last[k]!));
      }
      return;
    }
    if (p.turned) this.ringTurned(p);
    else this.ring(p);
  }

  /**
   * Ring steps, pattern by pattern, issued step by step in program order. The moving block (K,V —
   * or Q for TokenRing) a position needs at step s comes from whoever held it at step s−1, or
   * for the first step of a double ring's round, over the outer hop from whoever held it when the
   * previous round began. Backward accumulators follow their block to its next holder, then home.
   */
  private ring(p: RingPhase): void {
    const e = this.engine,
      r = p.r,
      inner = p.inner,
      u = p.units,
      token = u.token;
    const moving = (s: number, i: number): number => u.moving(s, i);
    const holders = (s: number): Int32Array => {
      const h = new Int32Array(r);
      for (let i = 0; i < r; i++) h[moving(s, i)] = i;
      return h;
    };
    const pats = new Set(this.members.map((m) => m.pattern));
    const lKv = e.labelId(token ? 'q block' : 'k,v block'),
      lComp = e.labelId(p.name),
      lAcc = e.labelId('dk,dv accumulator');
    const lHome = e.labelId('dk,dv home'),
      lBack = e.labelId('partial out,lse'),
      lDone = e.labelId('ring done'),
      lMerge = e.labelId('merge last partial');
    const preMs = this.bytesMs(p.preBytes),
      postMs = this.bytesMs(p.postBytes),
      backMs = this.bytesMs(p.backBytes);
    for (const pat of pats) {
      const at = (i: number): number => this.id(pat, i);
      // end times: blocks arriving (kv), accumulators arriving (acc), computes; [step * r + position]
      const kv = new Float64Array(r * r),
        acc = new Float64Array(r * r),
        comp = new Float64Array(r * r);
      const start = Array.from({ length: r }, (_, i) => this.last[at(i)]!);
      const backLast = new Float64Array(r); // when the last partial result reached each owner
      const home = new Float64Array(r);
      const holderAt: Int32Array[] = [];
      const holdersOf = (s: number): Int32Array => (holderAt[s] ??= holders(s));
      /** issue the transfers that deliver the moving blocks of step s (during step s−1, or a round earlier) */
      const deliver = (s: number): void => {
        const fromRound = s % inner === 0;
        const srcStep = fromRound ? s - inner : s - 1;
        const src = holdersOf(srcStep);
        for (let i = 0; i < r; i++) {
          const from = src[moving(s, i)]!;
          let ready = srcStep > 0 ? kv[srcStep * r + from]! : start[from]!;
          if (!fromRound && s >= 2) ready = Math.max(ready, comp[(s - 2) * r + i]!); // the receiving buffer frees after step s−2
          kv[s * r + i] = this.transfer(lKv, at(from), at(i), preMs, ready);
        }
      };
      for (let s = 0; s < r; s++) {
        // program order of a step: start sending what the next step needs, compute, pass accumulators on
        if (s % inner === 0 && s + inner < r) deliver(s + inner);
        if ((s + 1) % inner !== 0 && s + 1 < r) deliver(s + 1);
        for (let i = 0; i < r; i++) {
          const ready = s > 0 ? kv[s * r + i]! : start[i]!;
          comp[s * r + i] = e.add('compute', lComp, at(i), COMPUTE, ringCompute(p, s, i), ready);
        }
        if (p.postBytes > 0) {
          const next = s + 1 < r ? holdersOf(s + 1) : undefined;
          for (let i = 0; i < r; i++) {
            const ready = Math.max(comp[s * r + i]!, acc[s * r + i]!);
            const b = moving(s, i);
            if (next) acc[(s + 1) * r + next[b]!] = this.transfer(lAcc, at(i), at(next[b]!), postMs, ready);
            else home[b] = this.transfer(lHome, at(i), at(b), postMs, ready);
          }
        }
        if (p.backBytes > 0 && s > 0) {
          for (let i = 0; i < r; i++) {
            const owner = moving(s, i);
            backLast[owner] = Math.max(
              backLast[owner]!,
              this.transfer(lBack, at(i), at(owner), backMs, comp[s * r + i]!),
            );
          }
        }
        delete holderAt[s - 1];
      }
      for (let i = 0; i < r; i++) {
        const ready = Math.max(comp[(r - 1) * r + i]!, home[i]!);
        // TokenRing: partials merge as they come (in the steps' compute); the last one once it is back
        this.last[at(i)] =
          p.backBytes > 0
            ? e.add('compute', lMerge, at(i), COMPUTE, p.tailMs, Math.max(ready, backLast[i]!))
            : e.add('compute', lDone, at(i), COMPUTE, 0, ready);
      }
    }
  }

  /**
   * A backward turned back (RingPhase.turned), pass by pass in program order. At step s position i
   * holds the block of i+1+s; during step t of a pass it sends the K,V for step t+1 (t ≤ inner−3)
   * and the sum of step t−1's block (t ≥ 1) to the previous position, which holds that block
   * next; the last step is the position's own block, whose sum completes there. A double ring's
   * round o (outer step) starts with the outer transfers — K,V for round o+1 (o ≤ outer−3) and the
   * sum of round o−1's block to the previous inner ring's position — which the round waits for at
   * its end; the inner passes keep no block from the forward (`fetchFirst`): each first fetches one.
   */
  private ringTurned(p: RingPhase): void {
    const e = this.engine,
      r = p.r,
      inner = p.inner,
      outerN = r / inner;
    const pats = new Set(this.members.map((m) => m.pattern));
    const lKv = e.labelId('k,v block'),
      lFirst = e.labelId('k,v first block'),
      lComp = e.labelId(p.name),
      lAcc = e.labelId('dk,dv sum');
    const lDone = e.labelId('ring done');
    const preMs = this.bytesMs(p.preBytes),
      postMs = this.bytesMs(p.postBytes);
    const innerPrev = (i: number): number => i - (i % inner) + (((i % inner) + inner - 1) % inner);
    const innerNext = (i: number): number => i - (i % inner) + (((i % inner) + 1) % inner);
    const outerPrev = (i: number): number => (i + r - inner) % r;
    for (const pat of pats) {
      const at = (i: number): number => this.id(pat, i);
      // end times per [step * r + position]: K,V arriving for the step, the sum of the step's block arriving, computes
      const kv = new Float64Array(r * r),
        acc = new Float64Array(r * r),
        comp = new Float64Array(r * r);
      /** a pass's first block, fetched from `from(i)` before its first step and awaited: when each position has sent and received it */
      const fetch = (from: (i: number) => number, ready: Float64Array): Float64Array => {
        const done = Float64Array.from(ready);
        for (let i = 0; i < r; i++) {
          const f = from(i),
            end = this.transfer(lFirst, at(f), at(i), preMs, Math.max(ready[i]!, ready[f]!));
          done[i] = Math.max(done[i]!, end);
          done[f] = Math.max(done[f]!, end);
        }
        return done;
      };
      // when each position enters the round (its outer block in hand)
      let round: Float64Array = Float64Array.from({ length: r }, (_, i) => this.last[at(i)]!);
      let outerSum: Float64Array = new Float64Array(r); // when the sum of the previous round's block is ready
      for (let o = 0; o < outerN; o++) {
        // outer transfers, under the whole round: K,V for the next round, the previous round's sum
        const outerEnd = Float64Array.from(round),
          outerIn = new Float64Array(r);
        if (outerN > 1) {
          if (o <= outerN - 3) {
            for (let i = 0; i < r; i++) {
              const to = outerPrev(i),
                end = this.transfer(lKv, at(i), at(to), preMs, round[i]!);
              outerEnd[i] = Math.max(outerEnd[i]!, end);
              outerEnd[to] = Math.max(outerEnd[to]!, end);
            }
          }
          if (o >= 1) {
            for (let i = 0; i < r; i++) {
              const to = outerPrev(i),
                end = this.transfer(lAcc, at(i), at(to), postMs, Math.max(round[i]!, outerSum[i]!));
              outerIn[to] = end;
              outerEnd[i] = Math.max(outerEnd[i]!, end);
              outerEnd[to] = Math.max(outerEnd[to]!, end);
            }
          }
        }
        const begin = p.fetchFirst ? fetch(innerNext, round) : round;
        const done = new Float64Array(r);
        for (let t = 0; t < inner; t++) {
          const s = o * inner + t;
          // program order of a step: start sending the next step's K,V, compute, pass the sum on
          if (t + 1 <= inner - 2) {
            for (let i = 0; i < r; i++) {
              const from = innerNext(i);
              let ready = t === 0 ? begin[from]! : kv[s * r + from]!;
              if (t >= 1) ready = Math.max(ready, comp[(s - 1) * r + i]!); // the receiving buffer frees after step t−1
              kv[(s + 1) * r + i] = this.transfer(lKv, at(from), at(i), preMs, ready);
            }
          }
          for (let i = 0; i < r; i++) {
            // the first block in hand from the start, the last one the position's own (of this round)
            const ready = t === 0 ? begin[i]! : t <= inner - 2 ? kv[s * r + i]! : round[i]!;
            comp[s * r + i] = e.add('compute', lComp, at(i), COMPUTE, ringCompute(p, s, i), ready);
          }
          for (let i = 0; i < r; i++) {
            const ready = Math.max(comp[s * r + i]!, acc[s * r + i]!);
            if (t < inner - 1)
              acc[(s + 1) * r + innerPrev(i)] = this.transfer(lAcc, at(i), at(innerPrev(i)), postMs, ready);
            else done[i] = ready;
          }
        }
        // the round's sum for its block (with the outer sum that arrived for it), and the round's outer transfers done
        outerSum = Float64Array.from(done, (d, i) => Math.max(d, outerIn[i]!));
        round = Float64Array.from(outerSum, (d, i) => Math.max(d, outerEnd[i]!));
      }
      for (let i = 0; i < r; i++) this.last[at(i)] = e.add('compute', lDone, at(i), COMPUTE, 0, round[i]!);
    }
  }
}

function phaseTasks(p: Phase, ranks: number): number {
  if (p.kind === 'compute') return ranks;
  if (p.kind !== 'ring') return ranks;
  return p.r * p.r * (2 + (p.postBytes > 0 ? 1 : 0) + (p.backBytes > 0 ? 2 : 0)) * Math.max(1, ranks / p.r);
}

/** `progress`: told of each phase's events as they are simulated (Progress: a line on stderr past 2 s). */
export function simulate(ctx: Context, l: PlanLayout, progress?: (total: number) => Progress): SimResult {
  const cfg = ctx.cfg;
  const sched = layerSchedule(ctx, l);
  const steps = stepPhases(ctx, l);
  const layers = cfg.mode === 'training' || cfg.mode === 'prefill' ? cfg.model.layers : 1;
  const micro = microbatches(cfg, l);
  const patterns = ringPatterns(l, cfg.cluster).length;
  const ranks = l.ring * patterns;
  const perLayer = [...sched.fwd, ...sched.bwd].reduce((s, p) => s + phaseTasks(p, ranks), 0);
  if (perLayer > MAX_TASKS) {
    throw new UserError(
      `simulate: a ring of ${l.ring} positions needs about ${perLayer.toExponential(1)} events per layer, above the simulator's ${MAX_TASKS.toExponential(0)}; simulate a layout with a smaller ring degree`,
    );
  }
  const full = perLayer * layers * micro <= FULL_STEP_TASKS;
  const b = new Builder(ctx, l, TRACED_RANKS);
  const tell = progress?.(full ? perLayer * layers * micro : perLayer);
  const run = (phases: readonly Phase[]): void => {
    for (const p of phases) {
      const before = b.engine.size;
      b.phase(p);
      tell?.tick(b.engine.size - before);
    }
  };
  let layerMs: number, stepMs: number;
  if (full) {
    for (let m = 0; m < micro; m++) {
      for (let k = 0; k < layers; k++) run(sched.fwd);
      run(steps.perMicro);
      for (let k = 0; k < layers; k++) run(sched.bwd);
    }
    run(steps.perStep);
    stepMs = b.engine.makespan();
    // the layers' share: what is left after the per-microbatch and per-step work
    layerMs = (stepMs - sumMs(ctx, steps.perStep) - micro * sumMs(ctx, steps.perMicro)) / (layers * micro);
  } else {
    run(sched.fwd);
    run(sched.bwd);
    layerMs = b.engine.makespan();
    stepMs = micro * (layers * layerMs + sumMs(ctx, steps.perMicro)) + sumMs(ctx, steps.perStep);
  }
  const analytic = timing(ctx, l);
  const e = b.engine;
  const standsFor = cfg.cluster.world / ranks;
  const simRanks: SimRank[] = b.members.map((m, k) => ({
    rank: rankOf(l, 0, m.u, m.pos, m.d),
    standsFor,
    computeMs: e.busyOf(k, COMPUTE),
    sendMs: e.busyOf(k, OUT_INTRA) + e.busyOf(k, OUT_INTER),
    recvMs: e.busyOf(k, IN_INTRA) + e.busyOf(k, IN_INTER),
    collectiveMs: e.collective[k]!,
    finishMs: e.rankFree(k),
  }));
  return {
    layerMs,
    stepMs,
    analyticLayerMs: analytic.layerMs,
    analyticStepMs: analytic.stepMs,
    scaled: !full,
    tasks: e.size,
    ranks: simRanks,
    engine: e,
  };
}

function sumMs(ctx: Context, phases: readonly Phase[]): number {
  let t = 0;
  for (const p of phases) {
    if (p.kind === 'compute') t += p.ms;
    else if (p.kind === 'collective') t += collectiveMs(ctx.net, p.op, p.bytes, p.group);
  }
  return t;
}
