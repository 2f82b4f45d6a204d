// One rank of the strategy × mask matrix on GPUs (started by cp.test.ts under weft launch): every
// strategy and shard this world allows, on every mask family of the CPU tests, in one NCCL
// world. Each case runs GpuRank.check (gathered result vs one GPU and vs the f64 reference);
// rank 0 prints one JSON line per case.
import { checkPasses, GpuRank } from '../../src/run/gpu.js';
import { type Layout, resolveLayout } from '../../src/run/layout.js';
import { SHARD_KINDS } from '../../src/shard/shard.js';
import { Rng } from '../../src/tensor/random.js';
import { divisors, maskOf, MASKS } from '../../test/strategy/cases.js';
import { PLACEMENTS } from '../../src/mesh/mesh.js';

const rank = await GpuRank.open();
const N = rank.size;
const S = 333,
  H = 4,
  Hkv = 2,
  D = 64; // odd and small: the f64 reference runs on the host for each of ~120 cases

const layouts: Layout[] = [
  ...SHARD_KINDS.map((shard): Layout => ({ strategy: 'ring', world: N, shard })),
  { strategy: 'allgather', world: N },
  { strategy: 'ulysses', world: N },
  { strategy: 'tokenring', world: N },
  ...divisors(N).flatMap((u) =>
    PLACEMENTS.map((placement): Layout => ({ strategy: 'usp', world: N, ulysses: u, ring: N / u, placement })),
  ),
  ...divisors(N).map((inner): Layout => ({ strategy: 'double-ring', world: N, inner })),
];

const rng = new Rng(2026); // every rank draws the same masks
for (const mask of MASKS) {
  const spec = maskOf(mask, S, rng);
  for (const layout of layouts) {
    const l = resolveLayout(layout, { S, H, Hkv }, spec);
    const check = await rank.check({ S, H, Hkv, D, mask: spec, dtype: 'bf16', scale: 0.125, seed: 1 }, l);
    if (check) {
      const name = `${l.strategy}${l.strategy === 'usp' ? ` ${l.ulysses}x${l.ring} ${l.placement}` : l.strategy === 'double-ring' ? ` inner ${l.inner}` : ''} ${l.shard} ${mask}`;
      process.stdout.write(`${JSON.stringify({ name, ok: checkPasses(check), check })}\n`);
    }
  }
}
await rank.world.comm.destroy();
rank.world.store.close();
