// `weft attn --backend cuda`: a user's tensors on GPUs. bf16 and f16 inputs go to the kernels as
// they are; f32 and f64 inputs are cast to bf16 first (the kernels take 16-bit inputs), with a
// note. One GPU runs the whole sequence through the flash kernel; under a launcher, each rank
// holds only its own rows (read from the file by the caller), runs the strategy over NCCL, and
// rank 0 gathers. Outputs: out, dq, dk, dv in the inputs' 16-bit type, lse in f32.
import { UserError } from '../errors.js';
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import type { HalfType } from '../backends/cuda/kernel/source.js';
import { openCuda } from '../backends/cuda/runtime/runtime.js';
import type { StDType } from '../io/safetensors.js';
import type { AttnOutputs } from '../io/problem.js';
import { MaskGrid } from '../mask/grid.js';
import { maskView } from '../mask/view.js';
import { castHost, type HostTensor } from '../tensor/host.js';
import type { FileShard } from './file-shards.js';
import { GpuRank } from './gpu.js';

/** The kernels' input type for a file's dtype, and a note when it is a cast. */
export function gpuInputType(dtype: StDType): { half: HalfType; note?: string } {
  if (dtype === 'BF16') return { half: 'bf16' };
  if (dtype === 'F16') return { half: 'f16' };
  return {
    half: 'bf16',
    note: `the inputs are ${dtype}; the GPU kernels take 16-bit inputs, so they are cast to bf16 (outputs in bf16, lse in f32)`,
  };
}

export function checkDims(f: FileShard): void {
  if (f.shape.D !== 64 && f.shape.D !== 128)
    throw new UserError(
      `head dim ${f.shape.D}: the GPU kernels take head dims 64 and 128 (weft attn on the CPU takes any)`,
    );
}

const outputsIn = (half: HalfType, r: AttnOutputs): AttnOutputs => {
  const o: AttnOutputs = { out: castHost(r.out, half), lse: castHost(r.lse, 'f32') };
  if (r.dq && r.dk && r.dv) {
    o.dq = castHost(r.dq, half);
    o.dk = castHost(r.dk, half);
    o.dv = castHost(r.dv, half);
  }
  return o;
};

/** The whole problem on one GPU (a one-rank FileShard holds every row). */
export async function attnOneGpu(f: FileShard, scale: number, device = 0): Promise<AttnOutputs> {
  checkDims(f);
  const { half } = gpuInputType(f.shape.dtype);
  const rt = await openCuda({ device });
  const dev = rt.device,
    kernel = new CudaKernel(rt);
  const up = (t: HostTensor) => dev.upload(castHost(t, half));
  const q = up(f.q),
    k = up(f.k),
    v = up(f.v),
    dout = f.dout && up(f.dout);
  const pos = f.shard.positions(0); // a one-rank layout: every row, in the shard's order
  const view = maskView(MaskGrid.build(f.shape.mask, f.T), pos, pos);
  const st = kernel.forward({ q, k, v, view, scale });
  const r: AttnOutputs = { out: await dev.download(dev.cast(st.out, half)), lse: await dev.download(st.lse) };
  if (dout) {
    const g = kernel.backward({ q, k, v, out: st.out, lse: st.lse, dout, view, scale });
    r.dq = await dev.download(dev.cast(g.dq, half));
    r.dk = await dev.download(dev.cast(g.dk, half));
    r.dv = await dev.download(dev.cast(g.dv, half));
  }
  await rt.synchronize();
  const global = (t: HostTensor, axis: 0 | 1 = 0): HostTensor => f.shard.gather([t], axis);
  const g: AttnOutputs = { out: global(r.out), lse: global(r.lse, 1) };
  if (r.dq && r.dk && r.dv) {
    g.dq = global(r.dq);
    g.dk = global(r.dk);
    g.dv = global(r.dv);
  }
  return outputsIn(half, g);
}

/** This rank's rows through the strategy on its GPU (collective); rank 0 gets the gathered outputs. */
export async function attnGpuRank(f: FileShard, scale: number): Promise<AttnOutputs | undefined> {
  checkDims(f);
  const { half } = gpuInputType(f.shape.dtype);
  const rank = await GpuRank.open();
  try {
    if (rank.size !== f.layout.world)
      throw new UserError(`--world ${f.layout.world} differs from the ${rank.size} processes the launcher started`);
    const up = (t: HostTensor) => rank.world.rt.device.upload(castHost(t, half));
    const r = await rank.attendRows(f.shard, MaskGrid.build(f.shape.mask, f.T), f.layout, scale, {
      q: up(f.q),
      k: up(f.k),
      v: up(f.v),
      dout: f.dout && up(f.dout),
    });
    return r && outputsIn(half, r);
  } finally {
    await rank.world.comm.destroy();
    rank.world.store.close();
  }
}
