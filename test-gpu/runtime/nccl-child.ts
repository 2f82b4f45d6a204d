// One rank of the NCCL GPU tests (started by nccl.test.ts, two ranks). Mode 'collectives'
// checks every operation's result; 'splits' replays the mesh strategies' split sequences; mode 'kill' has rank 1 die and rank 0 report how long it took
// to turn that into an error.
import { ncclWorld } from '../../src/backends/cuda/nccl/world.js';
import type { CudaTensor } from '../../src/backends/cuda/runtime/tensor.js';
import type { DType } from '../../src/tensor/dtype.js';
import { castHost, type HostTensor, hostTensor } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';

const mode = process.argv[2] ?? 'collectives';
const w = await ncclWorld({ timeoutMs: Number(process.env.WEFT_NCCL_TIMEOUT ?? 60) * 1000 });
const { rt, comm } = w;
const dev = rt.device;
const n = comm.size,
  r = comm.rank;

function words(t: HostTensor): number[] {
  return Array.from(
    t.dtype === 'f64' || t.dtype === 'f32'
      ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
      : t.data,
  );
}
function pass(name: string, ok: boolean, detail = ''): void {
  if (!ok) {
    console.error(`FAIL ${name} ${detail}`);
    process.exit(1);
  }
  console.log(`PASS ${name}`);
}
const data = (seed: number, dt: DType, len: number): HostTensor => randn(new Rng(seed), dt, [len]);
const ints = (len: number, f: (i: number) => number, dt: DType = 'f32'): HostTensor =>
  castHost(
    hostTensor(
      'f64',
      [len],
      new Float64Array(len).map((_, i) => f(i)),
    ),
    dt,
  );
const get = (t: CudaTensor): Promise<HostTensor> => dev.download(t);

if (mode === 'collectives') {
  // send/recv: a ring step, and a batch exchanging with both neighbours at once
  {
    const next = (r + 1) % n,
      prev = (r - 1 + n) % n;
    const send = dev.upload(data(100 + r, 'bf16', 4099)),
      recv = dev.empty('bf16', [4099]);
    await comm.sendRecv([{ send: { buf: send, peer: next }, recv: { buf: recv, peer: prev } }]).wait();
    pass(
      'sendRecv ring',
      JSON.stringify(words(await get(recv))) === JSON.stringify(words(data(100 + prev, 'bf16', 4099))),
    );
    const a = dev.upload(data(200 + r, 'f32', 1000)),
      b = dev.upload(data(300 + r, 'f32', 77));
    const ra = dev.empty('f32', [1000]),
      rb = dev.empty('f32', [77]);
    await comm
      .sendRecv([
        { send: { buf: a, peer: next }, recv: { buf: ra, peer: prev } },
        { send: { buf: b, peer: prev }, recv: { buf: rb, peer: next } },
      ])
      .wait();
    pass(
      'sendRecv batch',
      JSON.stringify(words(await get(ra))) === JSON.stringify(words(data(200 + prev, 'f32', 1000))) &&
        JSON.stringify(words(await get(rb))) === JSON.stringify(words(data(300 + next, 'f32', 77))),
    );
  }
  // all-to-all with a different size for every pair
  {
    const m = 1000;
    const send = Array.from({ length: n }, (_, j) => dev.upload(data(1000 + r * 16 + j, 'bf16', m + j)));
    const recv = Array.from({ length: n }, () => dev.empty('bf16', [m + r]));
    await comm.allToAll(send, recv).wait();
    let ok = true;
    for (let j = 0; j < n; j++)
      ok &&=
        JSON.stringify(words(await get(recv[j]!))) === JSON.stringify(words(data(1000 + j * 16 + r, 'bf16', m + r)));
    pass('allToAll', ok);
  }
  // all-gather
  {
    const send = dev.upload(data(2000 + r, 'f32', 777)),
      recv = dev.empty('f32', [n * 777]);
    await comm.allGather(send, recv).wait();
    const want: number[] = [];
    for (let j = 0; j < n; j++) want.push(...words(data(2000 + j, 'f32', 777)));
    pass('allGather', JSON.stringify(words(await get(recv))) === JSON.stringify(want));
  }
  // reduce-scatter and all-reduce on integers, so that sums are exact in any order
  {
    const L = 513;
    const send = dev.upload(ints(n * L, (i) => ((r + 1) * (i + 1)) % 1009)),
      recv = dev.empty('f32', [L]);
    await comm.reduceScatter(send, recv).wait();
    const got = (await get(recv)).data;
    let ok = true;
    for (let i = 0; i < L; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += ((k + 1) * (r * L + i + 1)) % 1009;
      ok &&= got[i] === s;
    }
    pass('reduceScatter', ok);
    for (const dt of ['f32', 'bf16'] as DType[]) {
      const buf = dev.upload(ints(10007, (i) => (i * (r + 3)) % 7, dt));
      await comm.allReduce(buf).wait();
      const res = await get(buf);
      const want = ints(
        10007,
        (i) => {
          let s = 0;
          for (let k = 0; k < n; k++) s += (i * (k + 3)) % 7;
          return s;
        },
        dt,
      );
      pass(`allReduce ${dt}`, JSON.stringify(words(res)) === JSON.stringify(words(want)));
    }
  }
  // overlap: the compute stream uses a received buffer only after wait()
  {
    const big = dev.full('f32', [8 << 20], r + 1),
      got = dev.empty('f32', [8 << 20]);
    const work = comm.sendRecv([{ send: { buf: big, peer: (r + 1) % n }, recv: { buf: got, peer: (r - 1 + n) % n } }]);
    const local = dev.full('f32', [8 << 20], 0.5); // independent compute while the transfer runs
    await work.wait();
    dev.add(got, local);
    const h = (await get(got)).data;
    const prev = (r - 1 + n) % n;
    pass('wait orders compute after communication', h[0] === prev + 1.5 && h[h.length - 1] === prev + 1.5);
  }
  // sub-communicators
  {
    const single = comm.split(r);
    pass('split by rank gives singletons', single.size === 1 && single.rank === 0);
    const rev = comm.split(0, n - 1 - r);
    pass('split with keys reorders ranks', rev.size === n && rev.rank === n - 1 - r);
    const send = dev.upload(ints(5, () => r)),
      recv = dev.empty('f32', [5 * n]);
    await rev.allGather(send, recv).wait();
    const g = (await get(recv)).data;
    pass(
      'collective on a split communicator',
      Array.from({ length: n }, (_, j) => g[j * 5]).join() === Array.from({ length: n }, (_, j) => n - 1 - j).join(),
    );
    await single.destroy();
    await rev.destroy();
  }
  await comm.barrier();
  pass('barrier', true);
  await comm.destroy();
  w.store.close();
} else if (mode === 'splits') {
  // the split sequences of the mesh strategies (USP u×1 and 1×r, double ring with inner 1), each
  // followed by the collective the strategy then runs — on 2 GPUs these hung inside weft run
  const a2a = async (c: typeof comm, what: string): Promise<void> => {
    const send = Array.from({ length: c.size }, (_, j) => dev.upload(ints(5, () => r * 10 + j)));
    const recv = Array.from({ length: c.size }, () => dev.empty('f32', [5]));
    await c.allToAll(send, recv).wait();
    const got = await Promise.all(recv.map(async (t) => (await get(t)).data[0]));
    pass(what, got.length === c.size);
    console.log(`rank ${r} ${what}: ${got.join(',')}`);
  };
  const usp = comm.split(0, r);
  console.log(`rank ${r} split 1 done`);
  const singles = comm.split(r, 0);
  console.log(`rank ${r} split 2 done`);
  await a2a(usp, 'all-to-all on the first of two splits (USP 2×1)');
  await a2a(singles, 'all-to-all on a singleton split');
  const inner = comm.split(10 + r, 0),
    outer = comm.split(20, r);
  await a2a(outer, 'all-to-all after singleton then full splits (double ring, inner 1)');
  await a2a(inner, 'all-to-all on the inner singleton');
  await comm.barrier();
  pass('world barrier after the splits', true);
  for (const c of [usp, singles, inner, outer]) await c.destroy();
  await comm.destroy();
  w.store.close();
} else if (mode === 'kill') {
  const buf = dev.full('f32', [1 << 20], 1);
  await comm.allReduce(buf).wait();
  await rt.synchronize();
  if (r === 1) {
    console.log('rank 1 dies now');
    process.kill(process.pid, 'SIGKILL');
  }
  await new Promise((res) => setTimeout(res, 500));
  const t0 = Date.now();
  try {
    await comm.allReduce(buf).wait();
    await rt.synchronize();
    console.log('FAIL no error although the peer is dead');
    process.exit(1);
  } catch (e) {
    console.log(`DETECTED after ${Date.now() - t0} ms: ${e instanceof Error ? e.message : e}`);
    process.exit(0);
  }
}
