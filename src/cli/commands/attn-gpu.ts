// `weft attn --backend cuda`: one GPU, or one GPU per process under a launcher (each rank reads
// only its own rows; rank 0 writes). Loaded only when CUDA is asked for.
import { resolveBackend } from '../../backends/index.js';
import { UserError } from '../../errors.js';
import { resolveOutput } from '../../io/output.js';
import { saveOutputs } from '../../io/problem.js';
import { defaultScale } from '../../kernel/kernel.js';
import type { DistEnv } from '../../launch/env.js';
import { maskName } from '../../mask/spec.js';
import { readFileShard } from '../../run/file-shards.js';
import { attnGpuRank, attnOneGpu, checkDims, gpuInputType } from '../../run/gpu-attn.js';
import type { Layout } from '../../run/index.js';
import { checkWorld } from '../../launch/cluster.js';
import { type AttnOpts, reportAttn, warnIgnored } from '../attn-setup.js';

export async function attnGpu(
  o: AttnOpts,
  layout: Layout | undefined,
  d: DistEnv | undefined,
  scaleArg: number | undefined,
): Promise<void> {
  if (!d && layout && layout.world > 1)
    throw new UserError(
      `--strategy ${layout.strategy} on ${layout.world} GPUs runs one process per GPU: weft launch -n ${layout.world} -- attn --backend cuda …`,
    );
  if (d) checkWorld(layout!, d);
  const rank = d?.rank ?? 0;
  const out = rank === 0 ? resolveOutput(o.out, [o.in]) : undefined; // rank 0 writes: a bad --out fails before any work
  const f = readFileShard(o.in, o.mask, d ? layout! : { strategy: 'ring', world: 1 }, rank);
  if (rank === 0) warnIgnored(o, f.shape.ignored);
  checkDims(f);
  await resolveBackend('cuda'); // one line and exit 2 when there is no GPU
  const { half, note } = gpuInputType(f.shape.dtype);
  if (note && rank === 0) process.stderr.write(`weft attn: ${note}\n`);
  const scale = scaleArg ?? defaultScale(f.shape.D);
  const t0 = performance.now();
  const r = d ? await attnGpuRank(f, scale) : await attnOneGpu(f, scale, 0);
  if (!r || !out) return;
  saveOutputs(
    out,
    f.shape,
    r,
    half,
    { producer: 'weft attn', mask: maskName(f.shape.mask), scale: String(scale), backend: 'cuda' },
    'f32',
  );
  reportAttn(o, layout, {
    ...f.shape,
    dtype: half,
    scale,
    where: d ? `${layout!.strategy} on ${d.worldSize} GPUs (${d.launcher})` : 'one GPU',
    ms: performance.now() - t0,
  });
}
