// The per-rank timeline of a simulation, as JSON: every simulated rank's busy time and finish;
// spans (compute, transfers with their peer, collectives) for the first ranks — all of them on
// small clusters, a summary per rank beyond.
import { describeLayout, type PlanLayout } from '../plan/layout.js';
import type { Span } from './engine.js';
import type { SimResult } from './simulate.js';

export interface Timeline {
  layout: string;
  scope: string;
  stepMs: number;
  analyticStepMs: number;
  unit: 'ms';
  ranks: { rank: number; standsFor: number; computeMs: number; sendMs: number; recvMs: number; collectiveMs: number; hostMs: number; finishMs: number; spans?: Span[] }[];
  note?: string;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Spans for the first `spanRanks` simulated ranks, at most `maxSpans` in all (in issue order per rank). */
export function timeline(l: PlanLayout, sim: SimResult, spanRanks = 64, maxSpans = 200_000): Timeline {
  const n = Math.min(spanRanks, sim.ranks.length, sim.engine.traced);
  const spansPerRank = Math.max(1, Math.floor(maxSpans / Math.max(1, n)));
  const t: Timeline = {
    layout: describeLayout(l),
    scope: sim.scaled ? 'one layer, forward and backward (the step is assembled from it)' : 'the whole step',
    stepMs: r3(sim.stepMs), analyticStepMs: r3(sim.analyticStepMs), unit: 'ms',
    ranks: sim.ranks.map((x, k) => {
      const row: Timeline['ranks'][number] = { rank: x.rank, standsFor: x.standsFor, computeMs: r3(x.computeMs), sendMs: r3(x.sendMs), recvMs: r3(x.recvMs), collectiveMs: r3(x.collectiveMs), hostMs: r3(x.hostMs), finishMs: r3(x.finishMs) };
      if (k < n) row.spans = sim.engine.spans(k, spansPerRank).map((s) => ({ ...s, start: r3(s.start), end: r3(s.end) }));
      return row;
    }),
  };
  const cut = t.ranks.some((r) => r.spans && r.spans.length === spansPerRank);
  if (n < sim.ranks.length || cut) {
    t.note = `spans for the first ${n} of ${sim.ranks.length} simulated ranks${cut ? `, the first ${spansPerRank} of each` : ''}; every rank is summarised`;
  }
  return t;
}
