// The per-rank timeline of a simulation as Chrome trace event JSON (io/trace.ts): one process per
// simulated rank, one thread per stream (compute, send, recv, collective), spans for the
// first ranks — all of them on small clusters; every rank's busy time and finish in otherData.
import { type ChromeTrace, chromeTrace, type TraceSpan } from '../io/trace.js';
import { describeLayout, type PlanLayout } from '../plan/layout.js';
import type { SimResult } from './simulate.js';

export interface RankSummary {
  rank: number;
  standsFor: number;
  computeMs: number;
  sendMs: number;
  recvMs: number;
  collectiveMs: number;
  finishMs: number;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const STREAMS = ['compute', 'send', 'recv', 'collective'];

/** Spans for the first `spanRanks` simulated ranks, at most `maxSpans` in all (in issue order per rank). */
export function timeline(l: PlanLayout, sim: SimResult, spanRanks = 64, maxSpans = 200_000): ChromeTrace {
  const n = Math.min(spanRanks, sim.ranks.length, sim.engine.traced);
  const spansPerRank = Math.max(1, Math.floor(maxSpans / Math.max(1, n)));
  const spans: TraceSpan[] = [];
  let cut = false;
  for (let k = 0; k < n; k++) {
    const rank = sim.ranks[k]!.rank;
    const mine = sim.engine.spans(k, spansPerRank);
    if (mine.length === spansPerRank) cut = true;
    for (const s of mine) {
      const stream = s.kind === 'transfer' ? (s.role ?? 'send') : s.kind;
      spans.push({
        pid: rank,
        stream,
        name: s.name,
        startMs: s.start,
        endMs: s.end,
        ...(s.peer === undefined ? {} : { args: { peer: s.peer } }),
      });
    }
  }
  const ranks: RankSummary[] = sim.ranks.map((x) => ({
    rank: x.rank,
    standsFor: x.standsFor,
    computeMs: r3(x.computeMs),
    sendMs: r3(x.sendMs),
    recvMs: r3(x.recvMs),
    collectiveMs: r3(x.collectiveMs),
    finishMs: r3(x.finishMs),
  }));
  const other: Record<string, unknown> = {
    layout: describeLayout(l),
    scope: sim.scaled ? 'one layer, forward and backward (the step is assembled from it)' : 'the whole step',
    stepMs: r3(sim.stepMs),
    analyticStepMs: r3(sim.analyticStepMs),
    ranks,
  };
  if (n < sim.ranks.length || cut) {
    other.note = `spans for the first ${n} of ${sim.ranks.length} simulated ranks${cut ? `, the first ${spansPerRank} of each` : ''}; every rank is summarised`;
  }
  const processes = sim.ranks
    .slice(0, n)
    .map((x) => ({ pid: x.rank, name: `rank ${x.rank}${x.standsFor > 1 ? ` (stands for ${x.standsFor} GPUs)` : ''}` }));
  return chromeTrace(processes, STREAMS, spans, other);
}
