// Plain-text tables for people (JSON goes to scripts).

/** Columns from the first row's keys; numbers right-aligned. */
export function table(rows: readonly Record<string, string | number | boolean | null | undefined>[]): string {
  if (rows.length === 0) return '(nothing)\n';
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown): string => (v === undefined || v === null ? '-' : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[], right: boolean[]): string =>
    vals
      .map((v, i) => (right[i] ? v.padStart(width[i]!) : v.padEnd(width[i]!)))
      .join('  ')
      .trimEnd();
  const numeric = cols.map((c) =>
    rows.every((r) => typeof r[c] === 'number' || r[c] === undefined || /^-?[\d.]+(e[-+]?\d+)?$/.test(cell(r[c]))),
  );
  return (
    [
      line(cols, numeric),
      line(
        width.map((w) => '─'.repeat(w)),
        numeric,
      ),
      ...rows.map((r) =>
        line(
          cols.map((c) => cell(r[c])),
          numeric,
        ),
      ),
    ].join('\n') + '\n'
  );
}
