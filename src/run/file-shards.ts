// A rank's share of a `weft attn` input file: validate the file from its header (the same checks
// as the whole-file path), lay out the shards, and read only this rank's rows of q, k, v, dout.
import { problemShape, type ProblemShape, type TensorEntry } from '../io/problem.js';
import { RowReader } from '../io/rows.js';
import { type StTensor, toHost } from '../io/safetensors.js';
import { MaskGrid } from '../mask/grid.js';
import { ShardMap } from '../shard/shard.js';
import { castHost, type HostTensor } from '../tensor/host.js';
import { UserError } from '../errors.js';
import { firstNonFinite, indexIn } from '../kernel/finite.js';
import { type Layout, resolveLayout, type ResolvedLayout } from './layout.js';
import { documentsOf } from './rank.js';

export interface FileShard {
  shape: ProblemShape;
  /** T = batch × S packed rows */
  T: number;
  layout: ResolvedLayout;
  shard: ShardMap;
  /** this rank's rows, in the file's dtype: q, dout [len, H, D]; k, v [len, Hkv, D] */
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  dout?: HostTensor;
}

/** The non-finite policy of the whole-file path (kernel/finite.ts), on a rank's rows, named by their place in the file. */
function refuseNonFinite(name: string, t: HostTensor, pos: Int32Array, shape: ProblemShape): void {
  const i = firstNonFinite(t);
  if (i < 0) return;
  const [row, h, d] = indexIn(i, t.shape) as [number, number, number];
  const p = pos[row]!;
  const at = shape.batched ? [Math.floor(p / shape.S), p % shape.S, h, d] : [p, h, d];
  const x = castHost({ ...t, data: t.data.subarray(i, i + 1) as never, shape: [1] }, 'f64').data[0];
  throw new UserError(
    `${name} holds ${x} at [${at.join(', ')}]: weft refuses NaN and infinite inputs (see "Non-finite values" in the README)`,
  );
}

/** Validate `path` and read rank `rank`'s rows of a `world`-rank layout. */
export function readFileShard(path: string, maskText: string, layout: Layout, rank: number): FileShard {
  const file = new RowReader(path);
  try {
    const entries = new Map<string, TensorEntry>(file.tensors);
    if (file.tensors.has('cu_seqlens')) entries.set('cu_seqlens', file.whole('cu_seqlens'));
    const shape = problemShape(entries, maskText, path);
    const T = shape.batch * shape.S;
    const resolved = resolveLayout(layout, { S: T, H: shape.H, Hkv: shape.Hkv }, shape.mask);
    MaskGrid.build(shape.mask, T); // a bad mask fails here, before anything is read
    const shard = ShardMap.build(resolved.shard, T, layout.world, documentsOf(shape.mask));
    const pos = shard.positions(rank);
    const rows = (name: string, heads: number): HostTensor => {
      const t: StTensor = file.rows(name, pos, heads * shape.D);
      const h: HostTensor = { ...toHost(t, name), shape: [pos.length, heads, shape.D] };
      refuseNonFinite(name, h, pos, shape);
      return h;
    };
    const out: FileShard = {
      shape,
      T,
      layout: resolved,
      shard,
      q: rows('q', shape.H),
      k: rows('k', shape.Hkv),
      v: rows('v', shape.Hkv),
    };
    if (shape.backward) out.dout = rows('dout', shape.H);
    return out;
  } finally {
    file.close();
  }
}
