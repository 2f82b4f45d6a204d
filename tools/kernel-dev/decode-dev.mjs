// Development runs of the decode kernel on the GPU machine (needs dist/: npx tsc -p .):
//   node tools/kernel-dev/decode-dev.mjs smoke          one small forward (for compute-sanitizer)
//   node tools/kernel-dev/decode-dev.mjs sweep          pipeline stages × CTAs per SM on a few shapes
import { openCuda } from '../../dist/src/backends/cuda/runtime/runtime.js';
import { DecodeKernel } from '../../dist/src/backends/cuda/kernel/decode.js';
import { DeviceRandom } from '../../dist/src/backends/cuda/kernel/random.js';
import { decodeView, decodeBytes, repsFor } from '../../dist/src/bench/decode.js';

const mode = process.argv[2] ?? 'smoke';
const rt = await openCuda();
const rand = new DeviceRandom(rt);
const H = 32,
  Hkv = 8,
  D = 128;

async function time(dk, B, P, T, iters) {
  const view = decodeView(B, P, T),
    tk = B * (P + T);
  const q = rand.tensor('bf16', [B * T, H, D], 1),
    k = rand.tensor('bf16', [tk, Hkv, D], 2),
    v = rand.tensor('bf16', [tk, Hkv, D], 3);
  const dims = { tq: B * T, tk, h: H, hkv: Hkv, d: D, dtype: 'bf16' };
  const once = () => {
    const s = dk.forward(q, k, v, view, 0.088, dims);
    s.out.release();
    s.lse.release();
  };
  const reps = mode === 'smoke' ? 1 : repsFor(decodeBytes({ B, P, T, Hkv, D }));
  once();
  once();
  await rt.synchronize();
  const e0 = rt.event(true),
    e1 = rt.event(true),
    ms = [];
  for (let i = 0; i < iters; i++) {
    e0.record(rt.compute);
    for (let j = 0; j < reps; j++) once();
    e1.record(rt.compute);
    await rt.waitEvent(e1);
    ms.push(e1.since(e0) / reps);
  }
  ms.sort((a, b) => a - b);
  for (const t of [q, k, v]) t.release();
  return ms[Math.floor(ms.length / 2)];
}

if (mode === 'smoke') {
  const dk = new DecodeKernel(rt);
  for (const [B, P, T] of [
    [1, 1000, 1],
    [3, 700, 4],
    [2, 500, 8],
  ]) {
    const ms = await time(dk, B, P, T, 1);
    console.log(`smoke B=${B} P=${P} T=${T}: ${ms.toFixed(3)} ms`);
  }
} else {
  for (const [stages, ctasPerSm] of [
    [3, 2],
    [2, 2],
    [4, 1],
    [4, 2],
    [6, 1],
  ]) {
    const dk = new DecodeKernel(rt, { stages, ctasPerSm });
    const row = [];
    for (const [B, P, T] of [
      [1, 32768, 1],
      [1, 131072, 1],
      [1, 1048576, 1],
      [16, 65536, 1],
      [1, 131072, 4],
      [16, 32768, 8],
    ]) {
      const ms = await time(dk, B, P, T, 10);
      row.push(`B${B} P${P} T${T} ${(decodeBytes({ B, P, T, Hkv, D }) / (ms * 1e-3) / 1e12).toFixed(2)}`);
    }
    console.log(`stages ${stages} ctas/SM ${ctasPerSm}: ${row.join(' | ')} TB/s`);
  }
}
