// Inference over the sharded KV cache against the f64 reference over each request's whole
// sequence (test/helpers/naive.ts): every token's output, whichever step computed it, within
// 1e-10 relative — world sizes 1–8, uneven shards, batches of requests of different lengths,
// causal, sliding-window and document masks, pass-KV and pass-Q prefill in chunks, decode of 1 or
// k tokens. Sizes are bounded so the file runs in seconds on two cores.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type InferProblem, type InferResult, runInference, runInferenceBatch } from '../../src/infer/index.js';
import type { InferStep } from '../../src/infer/index.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import { asF64, relError } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { naiveAttention } from '../helpers/naive.js';

const TOL = 1e-10;

/** Masks a cache can hold: no token sees a later one. */
function arbCausalMask(L: number): fc.Arbitrary<MaskSpec> {
  const inner = fc.oneof(
    fc.constant<MaskSpec>({ kind: 'causal' }),
    fc.integer({ min: 0, max: 6 }).map((left): MaskSpec => ({ kind: 'sliding', left, right: 0 })),
  );
  const cuts = fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, L - 1) }), { maxLength: 3 })
    .map((c) => [0, ...c.filter((x) => x < L).sort((a, b) => a - b), L]);
  return fc.oneof(inner, fc.record({ kind: fc.constant('document' as const), cuSeqlens: cuts, inner }));
}

function makeProblem(
  seed: number,
  world: number,
  lengths: number[],
  masks: MaskSpec[],
  steps: InferStep[],
  H = 4,
  Hkv = 2,
  D = 3,
): InferProblem {
  const rng = new Rng(seed);
  return {
    world,
    dtype: 'f64',
    scale: 0.45,
    requests: lengths.map((L, b) => ({
      mask: masks[b]!,
      q: randn(rng, 'f64', [L, H, D]),
      k: randn(rng, 'f64', [L, Hkv, D]),
      v: randn(rng, 'f64', [L, Hkv, D]),
    })),
    steps,
  };
}

/** Worst relative error of out and lse over every request, against the naive f64 attention. */
function worstError(p: InferProblem, r: InferResult): number {
  let worst = 0;
  p.requests.forEach((req, b) => {
    const [L, H, D] = req.q.shape as [number, number, number],
      Hkv = req.k.shape[1]!;
    const ref = naiveAttention(asF64(req.q), asF64(req.k), asF64(req.v), L, H, Hkv, D, req.mask, p.scale);
    worst = Math.max(worst, relError(r.outs[b]!.out, ref.out), relError(r.outs[b]!.lse, ref.lse));
  });
  return worst;
}

/** A script: prefill the first `prompt[b]` tokens in chunks, then decode the rest `k` at a time. */
function script(prompt: number[], lengths: number[], chunks: number, k: number, passes: ('kv' | 'q')[]): InferStep[] {
  const steps: InferStep[] = [];
  const fed = lengths.map(() => 0);
  for (let c = 0; c < chunks; c++) {
    const counts = prompt.map((P, b) => {
      const end = Math.round((P * (c + 1)) / chunks);
      const n = end - fed[b]!;
      fed[b] = end;
      return n;
    });
    steps.push({ kind: 'prefill', pass: passes[c % passes.length]!, counts });
  }
  while (fed.some((f, b) => f < lengths[b]!)) {
    const counts = fed.map((f, b) => Math.min(k, lengths[b]! - f));
    counts.forEach((n, b) => {
      fed[b] = fed[b]! + n;
    });
    steps.push({ kind: 'decode', counts });
  }
  return steps;
}

describe('inference over the sharded KV cache matches the f64 reference (1e-10)', () => {
  it('random batches, masks, chunked prefills (pass-KV and pass-Q) and decode, world 1–8', async () => {
    const arbCase = fc.record({
      seed: fc.integer({ min: 1, max: 1e6 }),
      reqs: fc.array(
        fc.integer({ min: 1, max: 40 }).chain((L) =>
          fc.record({
            L: fc.constant(L),
            prompt: fc.integer({ min: 0, max: L }),
            mask: arbCausalMask(L),
          }),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      chunks: fc.integer({ min: 1, max: 3 }),
      k: fc.integer({ min: 1, max: 4 }),
      passes: fc.constantFrom<('kv' | 'q')[]>(['kv'], ['q'], ['kv', 'q'], ['q', 'kv']),
      heads: fc.constantFrom([1, 1], [2, 1], [4, 2], [4, 1], [3, 3]),
      D: fc.integer({ min: 1, max: 4 }),
    });
    // one launch of the ranks per world size, several drawn cases in it
    const bad: string[] = [];
    for (let world = 1; world <= 8; world++) {
      const cases = fc.sample(arbCase, { numRuns: 4, seed: 1600 + world });
      const problems = cases.map((c) => {
        const lengths = c.reqs.map((r) => r.L);
        return makeProblem(
          c.seed,
          world,
          lengths,
          c.reqs.map((r) => r.mask),
          script(
            c.reqs.map((r) => r.prompt),
            lengths,
            c.chunks,
            c.k,
            c.passes,
          ),
          c.heads[0],
          c.heads[1],
          c.D,
        );
      });
      const results = await runInferenceBatch(problems);
      problems.forEach((p, i) => {
        const e = worstError(p, results[i]!);
        if (!(e <= TOL) || !results[i]!.decodeAgree)
          bad.push(
            `world ${world} case ${i} ${JSON.stringify(cases[i])}: error ${e}, ranks agree ${results[i]!.decodeAgree}`,
          );
      });
    }
    assert.deepEqual(bad, []);
  });

  it('long context + 1 new token: every world 1–8, uneven shards, causal / sliding / documents', async () => {
    const P = 121,
      masks: MaskSpec[] = [
        { kind: 'causal' },
        { kind: 'sliding', left: 20, right: 0 },
        { kind: 'document', cuSeqlens: [0, 50, 101, P + 1], inner: { kind: 'causal' } },
      ];
    for (let world = 1; world <= 8; world++) {
      const problems = (['kv', 'q'] as const).map((pass) =>
        makeProblem(
          world,
          world,
          [P + 1, P + 1, P + 1],
          masks,
          [
            { kind: 'prefill', pass, counts: [P, P, P] },
            { kind: 'decode', counts: [1, 1, 1] },
          ],
          2,
          1,
          4,
        ),
      );
      const results = await runInferenceBatch(problems);
      problems.forEach((p, i) => {
        assert.ok(results[i]!.decodeAgree);
        assert.ok(worstError(p, results[i]!) <= TOL, `world ${world} case ${i}: ${worstError(p, results[i]!)}`);
      });
    }
  });

  it('k new tokens per step (speculative decoding) onto a batch of different lengths', async () => {
    const lengths = [90, 33, 61];
    const masks: MaskSpec[] = [
      { kind: 'causal' },
      { kind: 'sliding', left: 9, right: 0 },
      { kind: 'document', cuSeqlens: [0, 30, 61], inner: { kind: 'causal' } },
    ];
    const problems = [2, 4, 7].map((k) =>
      makeProblem(100 + k, 5, lengths, masks, script([70, 20, 55], lengths, 1, k, ['kv', 'q'])),
    );
    const results = await runInferenceBatch(problems);
    problems.forEach((p, i) => {
      assert.ok(results[i]!.decodeAgree);
      assert.ok(worstError(p, results[i]!) <= TOL);
    });
  });

  it('a prefill in chunks ends equal to the one-shot prefill, with either pass', async () => {
    const L = 96,
      mask: MaskSpec = { kind: 'document', cuSeqlens: [0, 40, L], inner: { kind: 'sliding', left: 12, right: 0 } };
    for (const world of [2, 5, 7]) {
      const one = makeProblem(7, world, [L], [mask], [{ kind: 'prefill', pass: 'kv', counts: [L] }]);
      const chunked = makeProblem(
        7,
        world,
        [L],
        [mask],
        [
          { kind: 'prefill', pass: 'q', counts: [17] },
          { kind: 'prefill', pass: 'kv', counts: [40] },
          { kind: 'prefill', pass: 'q', counts: [L - 57] },
        ],
      );
      const [a, b] = await runInferenceBatch([one, chunked]);
      if (!a || !b) throw new Error('missing results');
      assert.ok(worstError(one, a) <= TOL && worstError(chunked, b) <= TOL);
      assert.ok(relError(b.outs[0]!.out, a.outs[0]!.out) <= 1e-12, 'chunked and one-shot differ');
      assert.ok(relError(b.outs[0]!.lse, a.outs[0]!.lse) <= 1e-12);
    }
  });

  it('f32: the running state in f32, within 1e-5 of the f64 reference', async () => {
    const p = {
      ...makeProblem(
        3,
        4,
        [70, 50],
        [{ kind: 'causal' }, { kind: 'causal' }],
        script([60, 30], [70, 50], 2, 3, ['kv', 'q']),
      ),
      dtype: 'f32' as const,
    };
    const r = await runInference(p);
    assert.equal(r.outs[0]!.out.dtype, 'f32');
    assert.ok(worstError(p, r) <= 1e-5);
  });
});
