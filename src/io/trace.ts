// Timelines as Chrome trace event JSON, the format Perfetto (ui.perfetto.dev) and chrome://tracing
// open: {"traceEvents": [...]} with one process per rank and one thread per stream. Spans are
// complete events (ph "X", ts and dur in microseconds); metadata events (ph "M") name the
// processes and threads. A thread's events must not overlap, so spans of one stream that do
// (two transfers through different ports at once) go to a second lane, "send 2", and so on.

export interface TraceSpan {
  /** the rank */
  pid: number;
  /** the stream, e.g. 'compute' or 'comm' */
  stream: string;
  name: string;
  startMs: number;
  endMs: number;
  args?: Record<string, unknown>;
}

export type ChromeEvent =
  | {
      ph: 'X';
      name: string;
      cat: string;
      pid: number;
      tid: number;
      ts: number;
      dur: number;
      args?: Record<string, unknown>;
    }
  | {
      ph: 'M';
      name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index';
      pid: number;
      tid?: number;
      args: { name?: string; sort_index?: number };
    };

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ms';
  /** what the timeline shows, for people and scripts (trace viewers ignore it) */
  otherData?: Record<string, unknown>;
}

const us = (ms: number): number => Math.round(ms * 1e6) / 1e3; // microseconds, to the nanosecond

/**
 * `processes` names each rank (pid) in display order; `streams` gives the order of the threads;
 * spans of a stream not listed come after.
 */
export function chromeTrace(
  processes: readonly { pid: number; name: string }[],
  streams: readonly string[],
  spans: readonly TraceSpan[],
  otherData?: Record<string, unknown>,
): ChromeTrace {
  const events: ChromeEvent[] = [];
  processes.forEach((p, i) => {
    events.push({ ph: 'M', name: 'process_name', pid: p.pid, args: { name: p.name } });
    events.push({ ph: 'M', name: 'process_sort_index', pid: p.pid, args: { sort_index: i } });
  });
  // lanes per (rank, stream): each lane keeps the end of its last span
  const lanes = new Map<string, { tid: number; end: number }[]>();
  const order = [...streams];
  const byStart = [...spans].sort((a, b) => a.pid - b.pid || a.startMs - b.startMs || a.endMs - b.endMs);
  for (const s of byStart) {
    if (!order.includes(s.stream)) order.push(s.stream);
    const key = `${s.pid}\u0000${s.stream}`;
    const ls = lanes.get(key) ?? [];
    lanes.set(key, ls);
    let lane = ls.find((l) => l.end <= s.startMs);
    if (!lane) {
      lane = { tid: order.indexOf(s.stream) * 100 + ls.length + 1, end: -Infinity };
      ls.push(lane);
      const name = ls.length === 1 ? s.stream : `${s.stream} ${ls.length}`;
      events.push({ ph: 'M', name: 'thread_name', pid: s.pid, tid: lane.tid, args: { name } });
      events.push({ ph: 'M', name: 'thread_sort_index', pid: s.pid, tid: lane.tid, args: { sort_index: lane.tid } });
    }
    lane.end = s.endMs;
    const e: ChromeEvent = {
      ph: 'X',
      name: s.name,
      cat: s.stream,
      pid: s.pid,
      tid: lane.tid,
      ts: us(s.startMs),
      dur: Math.max(0, Math.round((us(s.endMs) - us(s.startMs)) * 1e3) / 1e3),
    };
    if (s.args) e.args = s.args;
    events.push(e);
  }
  const t: ChromeTrace = { traceEvents: events, displayTimeUnit: 'ms' };
  if (otherData) t.otherData = otherData;
  return t;
}
