// Progress of a long planner job on stderr, by counted work: silent while the job is short (the
// first `afterMs`, 2 s), then a line at most every `everyMs`. The clock, thresholds and output are
// injectable, so tests drive it by the work they count, never by how fast the machine is.
export interface ProgressOptions {
  afterMs?: number;
  everyMs?: number;
  now?: () => number;
  write?: (line: string) => void;
}

export class Progress {
  private done = 0;
  private shownAt = -Infinity;
  private lines = 0;
  private readonly t0: number;
  private readonly afterMs: number;
  private readonly everyMs: number;
  private readonly now: () => number;
  private readonly write: (line: string) => void;

  /** `what`: the unit counted, plural ("layouts priced", "events simulated"); `total`: the work expected. */
  constructor(
    private readonly what: string,
    private readonly total: number,
    o: ProgressOptions = {},
  ) {
    this.afterMs = o.afterMs ?? 2000;
    this.everyMs = o.everyMs ?? 1000;
    this.now = o.now ?? (() => performance.now());
    this.write = o.write ?? ((line) => process.stderr.write(line + '\n'));
    this.t0 = this.now();
  }

  /** Lines written so far. */
  get shown(): number {
    return this.lines;
  }

  /** `n` more units done. */
  tick(n = 1): void {
    this.done += n;
    const t = this.now();
    if (t - this.t0 < this.afterMs || t - this.shownAt < this.everyMs) return;
    this.shownAt = t;
    this.lines++;
    const pct = this.total > 0 ? ` (${Math.min(100, Math.floor((100 * this.done) / this.total))}%)` : '';
    this.write(
      `weft: ${this.done.toLocaleString('en-US')} of ${this.total.toLocaleString('en-US')} ${this.what}${pct}`,
    );
  }
}
