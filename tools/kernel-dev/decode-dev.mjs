// Development runs of the decode kernel on the GPU machine (needs dist/: npx tsc -p .):
//   node tools/kernel-dev/decode-dev.mjs smoke [out.json]   small forwards (for compute-sanitizer)
//   node tools/kernel-dev/decode-dev.mjs sweep [out.json]   the default launch beside other stage
//                                                          counts on the bench's shapes, TB/s
//                                                          (WEFT_SHAPES=BxPxT,… to choose shapes)
// The sweep also times the default with the last-CTA merge cut out of the source ("nomerge": what
// the merge tail costs), and checks every variant's output against the default's. Timing as
// `weft bench decode`: a lead call, then about a millisecond of back-to-back calls, median of 10.
import { readFileSync, writeFileSync } from 'node:fs';
import { openCuda } from '../../dist/src/backends/cuda/runtime/runtime.js';
import { DecodeKernel, DECODE_SOURCE_PATH } from '../../dist/src/backends/cuda/kernel/decode.js';
import { DeviceRandom } from '../../dist/src/backends/cuda/kernel/random.js';
import { decodeView, decodeBytes, repsFor } from '../../dist/src/bench/decode.js';

const mode = process.argv[2] ?? 'smoke';
const outFile = process.argv[3];
const rt = await openCuda();
const rand = new DeviceRandom(rt);
const H = 32,
  Hkv = 8,
  D = 128;

async function time(dk, q, k, v, view, dims, iters) {
  const once = () => {
    const s = dk.forward(q, k, v, view, 0.088, dims);
    s.out.release();
    s.lse.release();
  };
  const reps = mode === 'smoke' ? 1 : repsFor(decodeBytes({ B: 1, P: dims.tk, T: 0, Hkv, D }));
  once();
  once();
  await rt.synchronize();
  const e0 = rt.event(true),
    e1 = rt.event(true),
    ms = [];
  for (let i = 0; i < iters; i++) {
    once();
    e0.record(rt.compute);
    for (let j = 0; j < reps; j++) once();
    e1.record(rt.compute);
    await rt.waitEvent(e1);
    ms.push(e1.since(e0) / reps);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

function inputs(B, P, T) {
  const view = decodeView(B, P, T),
    tk = B * (P + T);
  return {
    view,
    q: rand.tensor('bf16', [B * T, H, D], 1),
    k: rand.tensor('bf16', [tk, Hkv, D], 2),
    v: rand.tensor('bf16', [tk, Hkv, D], 3),
    dims: { tq: B * T, tk, h: H, hkv: Hkv, d: D, dtype: 'bf16' },
  };
}

const results = [];
if (mode === 'smoke') {
  for (const launch of [{}, { stages: 3, ctasPerSm: 2, waves: 2 }]) {
    const dk = new DecodeKernel(rt, launch);
    for (const [B, P, T] of [
      [1, 1000, 1],
      [3, 700, 4],
      [2, 500, 8],
      [1, 20000, 1],
    ]) {
      const x = inputs(B, P, T);
      const ms = await time(dk, x.q, x.k, x.v, x.view, x.dims, 1);
      for (const t of [x.q, x.k, x.v]) t.release();
      console.log(`smoke ${JSON.stringify(launch)} B=${B} P=${P} T=${T}: ${ms.toFixed(3)} ms`);
    }
  }
} else {
  const source = readFileSync(DECODE_SOURCE_PATH, 'utf8');
  const cut = source.replace('  if (!last) return;', '  return;');
  if (cut === source) throw new Error('decode-dev: the merge cut did not apply');
  // the default (three stages), the default without its merge, and four stages (docs/decode.md), each timed twice
  const variants = [
    ['3x1', new DecodeKernel(rt, {})],
    ['3x1 nomerge', new DecodeKernel(rt, { source: cut })],
    ['4x1', new DecodeKernel(rt, { stages: 4 })],
    ['3x1 again', new DecodeKernel(rt, {})],
    ['4x1 again', new DecodeKernel(rt, { stages: 4 })],
  ];
  const shapes = (
    process.env.WEFT_SHAPES ??
    '1x32768x1,4x32768x1,1x131072x1,16x131072x1,1x1048576x1,16x1048576x1,4x32768x4,1x131072x4,1x32768x8'
  )
    .split(',')
    .map((x) => x.split('x').map(Number));
  console.log(`shape        ${variants.map(([n]) => n.padStart(12)).join('')}   (TB/s)`);
  for (const [B, P, T] of shapes) {
    rt.allocator.emptyCache();
    const x = inputs(B, P, T);
    const row = [];
    let ref;
    for (const [name, dk] of variants) {
      const ms = await time(dk, x.q, x.k, x.v, x.view, x.dims, 10);
      // the same out as the base kernel (which the GPU tests hold to the f64 reference)?
      const st = dk.forward(x.q, x.k, x.v, x.view, 0.088, x.dims);
      const o = (await rt.device.download(st.out)).data;
      st.out.release();
      st.lse.release();
      if (!ref) ref = o;
      else if (name !== '3x1 nomerge') {
        let e = 0;
        for (let i = 0; i < o.length; i++) e = Math.max(e, Math.abs(o[i] - ref[i]));
        if (!(e < 1e-4)) console.log(`MISMATCH ${name} ${B}x${P} T${T}: max |out − base| = ${e}`);
      }
      const TBps = decodeBytes({ B, P, T, Hkv, D }) / (ms * 1e-3) / 1e12;
      row.push(TBps);
      results.push({ B, P, T, variant: name, ms, TBps });
    }
    for (const t of [x.q, x.k, x.v]) t.release();
    console.log(`${`${B}x${P / 1024}K T${T}`.padEnd(13)}${row.map((r) => r.toFixed(3).padStart(12)).join('')}`);
  }
}
if (outFile) writeFileSync(outFile, JSON.stringify({ gpu: rt.info.name, results }, null, 1));
