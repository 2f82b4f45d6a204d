// GPU tests of the CUDA runtime on one device: allocation, JIT (and its cache), kernel launches,
// and the CudaDevice operations against the CPU device.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompileError } from '../../src/backends/cuda/runtime/nvrtc.js';
import { openCuda } from '../../src/backends/cuda/runtime/runtime.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { type DType, DTYPES } from '../../src/tensor/dtype.js';
import { castHost, type HostTensor, hostTensor } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { tempDir } from '../../test/helpers/temp.js';

const cacheDir = tempDir('weft-gpu-cubin-');
const rt = await openCuda({ device: 0, cacheDir });
const dev = rt.device;
const cpu = new CpuDevice();

function bits(t: HostTensor): number[] {
  return Array.from(
    t.dtype === 'f64' || t.dtype === 'f32'
      ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
      : t.data,
  );
}

test('device info', () => {
  const i = rt.info;
  console.log(
    `# ${i.name} cc ${i.cc.join('.')} ${i.arch}, ${i.sms} SMs, driver ${i.driverVersion}, NVRTC ${i.nvrtcVersion}, ${i.libcuda}, ${i.libnvrtc}`,
  );
  assert.ok(i.cc[0] >= 7);
  if (i.cc[0] === 9 && i.cc[1] === 0) assert.equal(i.arch, 'sm_90a');
  assert.ok(i.maxSharedOptin >= 48 * 1024);
});

test('the allocator hands a released block back without a driver call', () => {
  const a = rt.empty('f32', [1 << 16]);
  const p = a.ptr;
  a.release();
  const before = rt.allocator.stats();
  const b = rt.empty('f32', [1 << 16]);
  assert.equal(b.ptr, p);
  const after = rt.allocator.stats();
  assert.equal(after.driverAllocs, before.driverAllocs);
  assert.equal(after.cacheHits, before.cacheHits + 1);
  assert.equal(after.allocated, before.allocated + (1 << 18));
  assert.throws(() => {
    b.release();
    b.release();
  }, /release\(\) of a view or a released tensor/);
});

test('upload and download round-trip every dtype bit for bit', async () => {
  for (const dt of DTYPES) {
    const h = randn(new Rng(7), dt, [3, 1000, 5]);
    const back = await dev.download(dev.upload(h));
    assert.deepEqual(back.shape, h.shape);
    assert.deepEqual(bits(back), bits(h), dt);
  }
});

const SAXPY = `
template <typename T>
__global__ void saxpy(T a, const T* x, T* y, unsigned long long n) {
  unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
template __global__ void saxpy<float>(float, const float*, float*, unsigned long long);
`;

test('NVRTC compiles for this GPU, the second compile is a cache hit, and the kernel runs', async () => {
  const m1 = rt.compile(SAXPY, { name: 'saxpy.cu', nameExpressions: ['saxpy<float>'] });
  const m2 = rt.compile(SAXPY, { name: 'saxpy.cu', nameExpressions: ['saxpy<float>'] });
  console.log(`# compile ${m1.compileMs.toFixed(1)} ms, cached load ${m2.compileMs.toFixed(1)} ms`);
  assert.equal(m1.cacheHit, false);
  assert.equal(m2.cacheHit, true);
  const k = m2.kernel('saxpy<float>', ['f32', 'ptr', 'ptr', 'u64']);
  const n = 1_000_003;
  const x = hostTensor(
    'f32',
    [n],
    new Float32Array(n).map((_, i) => i % 1000),
  );
  const y = hostTensor('f32', [n], new Float32Array(n).fill(1));
  const dx = dev.upload(x),
    dy = dev.upload(y);
  k.launch({ grid: Math.ceil(n / 256), block: 256 }, 2, dx, dy, n);
  const out = (await dev.download(dy)).data as Float32Array;
  for (let i = 0; i < n; i += 9973) assert.equal(out[i], 2 * (i % 1000) + 1);
  assert.equal(out[n - 1], 2 * ((n - 1) % 1000) + 1);
  const a = k.attributes();
  assert.ok(a.numRegs > 0 && a.maxThreadsPerBlock >= 256);
  assert.throws(() => k.launch({ grid: 1, block: 1 }, 2, dx), /3 parameters|2 arguments for 4/);
});

test("a compile error carries NVRTC's log", () => {
  assert.throws(
    () => rt.compile('extern "C" __global__ void broken() { undeclared_thing = 1; }', { name: 'broken.cu' }),
    (e: Error) =>
      e instanceof CompileError &&
      /broken\.cu/.test(e.message) &&
      /undeclared_thing/.test(e.log) &&
      /error/.test(e.log),
  );
});

test('a kernel can use more than 48 KiB of dynamic shared memory once allowed', async () => {
  const m = rt.compile(
    `extern "C" __global__ void smem(double* out, int n) {
    extern __shared__ float buf[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = (float)i;
    __syncthreads();
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += buf[n - 1 - i];
    atomicAdd(out, s);
  }`,
    { name: 'smem.cu' },
  );
  const k = m.kernel('smem', ['ptr', 'i32']);
  const bytes = 160 * 1024,
    n = bytes / 4;
  k.setMaxDynamicSharedMemory(bytes);
  const out = dev.zeros('f64', [1]);
  k.launch({ grid: 1, block: 256, shared: bytes }, out, n);
  const got = (await dev.download(out)).data[0]!;
  assert.equal(got, (n * (n - 1)) / 2);
});

test('zeros, full, cast, add and copyBox match the CPU device bit for bit', async () => {
  const rng = new Rng(11);
  for (const dt of DTYPES) {
    assert.deepEqual(bits(await dev.download(dev.zeros(dt, [37, 3]))), bits(cpu.zeros(dt, [37, 3])), `zeros ${dt}`);
    assert.deepEqual(
      bits(await dev.download(dev.full(dt, [5, 7], -Infinity))),
      bits(cpu.full(dt, [5, 7], -Infinity)),
      `full -inf ${dt}`,
    );
    assert.deepEqual(
      bits(await dev.download(dev.full(dt, [1001], 0.1))),
      bits(cpu.full(dt, [1001], 0.1)),
      `full 0.1 ${dt}`,
    );
  }
  // shapes of 4k elements take the vectorised rows kernel, the others the generic kernels
  for (const [castShape, addShape] of [
    [
      [257, 3],
      [64, 5],
    ],
    [
      [256, 4],
      [33, 4],
    ],
  ])
    for (const from of DTYPES)
      for (const to of DTYPES) {
        const h = randn(rng, from, castShape!, 100);
        assert.deepEqual(
          bits(await dev.download(dev.cast(dev.upload(h), to))),
          bits(castHost(h, to)),
          `cast ${from}→${to} ${castShape}`,
        );
        const acc = randn(rng, to, addShape!),
          inc = randn(rng, from, addShape!);
        const dAcc = dev.upload(acc);
        dev.add(dAcc, dev.upload(inc));
        const hAcc = castHost(acc, to);
        cpu.add(hAcc, inc);
        assert.deepEqual(bits(await dev.download(dAcc)), bits(hAcc), `add ${to} += ${from} ${addShape}`);
      }
  // strided boxes: [A, B, rest] views, same dtype and converting; trailing [3, 2] takes the generic
  // paths (cuMemcpy2DAsync, the generic kernel), [2, 4] the rows kernel (rows of whole quads)
  const boxes = [
    { src: [1, 1], dst: [2, 3], size: [3, 2] },
    { src: [0, 0], dst: [0, 0], size: [5, 4] },
    { src: [4, 2], dst: [5, 6], size: [1, 1] },
    { src: [0, 1], dst: [1, 0], size: [4, 3] },
  ] as const;
  for (const rest of [
    [3, 2],
    [2, 4],
  ])
    for (const [sd, dd] of [
      ['f32', 'f32'],
      ['bf16', 'bf16'],
      ['f16', 'f16'],
      ['f32', 'bf16'],
      ['bf16', 'f32'],
      ['f16', 'f32'],
      ['f64', 'f16'],
    ] as [DType, DType][]) {
      for (const box of boxes) {
        const src = randn(rng, sd, [5, 4, ...rest]),
          dst = randn(rng, dd, [6, 7, ...rest]);
        const dDst = dev.upload(dst);
        dev.copyBox(dev.upload(src), dDst, box);
        const hDst = castHost(dst, dd);
        cpu.copyBox(src, hDst, box);
        assert.deepEqual(
          bits(await dev.download(dDst)),
          bits(hDst),
          `copyBox ${sd}→${dd} ${JSON.stringify(box)} rest ${rest}`,
        );
      }
    }
  assert.throws(
    () => dev.copyBox(dev.zeros('f32', [2, 2]), dev.zeros('f32', [2, 2]), { src: [1, 0], dst: [0, 0], size: [2, 1] }),
    /outside/,
  );
});

test('views share memory with their base', async () => {
  const t = dev.upload(hostTensor('f32', [10], new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])));
  const v = t.view(4, [2, 3]);
  assert.deepEqual(Array.from((await dev.download(v)).data), [4, 5, 6, 7, 8, 9]);
  dev.add(v, dev.full('f32', [2, 3], 10));
  assert.deepEqual(Array.from((await dev.download(t)).data), [0, 1, 2, 3, 14, 15, 16, 17, 18, 19]);
  assert.throws(() => t.view(8, [3]), /outside/);
});

test('timing events measure elapsed GPU time', async () => {
  const a = dev.zeros('f32', [64 << 20]);
  const e0 = rt.event(true).record(rt.compute);
  for (let i = 0; i < 4; i++) dev.add(a, a);
  const e1 = rt.event(true).record(rt.compute);
  await rt.waitEvent(e1);
  const ms = e1.since(e0);
  console.log(
    `# 4 adds of 256 MiB: ${ms.toFixed(3)} ms (${((4 * 3 * 256 * 2 ** 20) / (ms * 1e-3) / 1e9).toFixed(0)} GB/s)`,
  );
  assert.ok(ms > 0);
});
