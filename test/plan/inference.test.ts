// The planner's inference modes: the decode step as a read of the K/V bytes, the prefill's pass
// choice, and the published rows they are checked against (inference-published.ts), each with the
// model's error stated.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import {
  inferenceConfig,
  type InferenceConfig,
  type InferencePlan,
  keysRead,
  planInference,
} from '../../src/plan/inference.js';
import { DECODE_FIXED_US } from '../../src/plan/calibration/types.js';
import { buildContext } from '../../src/plan/search.js';
import { CP_INFERENCE_TTFT, LLAMA3_405B, PASS_CROSSOVER, SDPA_DECODE_H200 } from './inference-published.js';
import { decodeFixedFit, weftDecodeChecks, weftPrefillChecks } from './inference-validation.js';
import { relErr } from './validation.js';

const ATTN_ONLY = {
  name: 'attn',
  layers: 1,
  hidden: 4096,
  heads: 32,
  kvHeads: 8,
  headDim: 128,
  ffnHidden: 1,
  vocab: 1,
};

function plan(json: Record<string, unknown>, layout: { tp: number; cp: number }): InferencePlan {
  const cfg = inferenceConfig(json)!;
  const ctx = buildContext(cfg.base);
  return planInference(cfg, ctx.rates, ctx.net, [layout])[0]!;
}

const h200 = (gpus: number): Record<string, unknown> => ({ nodes: 1, gpusPerNode: gpus, gpu: 'h200' });
const hosts = (nodes: number): Record<string, unknown> => ({
  nodes,
  gpusPerNode: 8,
  gpu: 'h100',
  ...(nodes > 1 ? { interNode: { GBps: 50, latencyUs: 10 } } : {}),
});

describe('planner: inference configs', () => {
  it('decode and cached-prefill configs are read; the other modes are left to config.ts', () => {
    const d = inferenceConfig({ model: 'llama3-8b', mode: 'decode', seqLen: 4096, batchSeqs: 4, cluster: h200(2) })!;
    assert.deepEqual([d.mode, d.context, d.newTokens, d.batch, d.base.seqLen], ['decode', 4096, 1, 4, 4097]);
    const p = inferenceConfig({ model: 'llama3-8b', mode: 'prefill', seqLen: 0, newTokens: 512, cluster: h200(2) })!;
    assert.deepEqual([p.mode, p.context, p.newTokens], ['prefill', 0, 512]);
    assert.equal(inferenceConfig({ model: 'llama3-8b', mode: 'prefill', seqLen: 512, cluster: h200(2) }), undefined);
    assert.throws(
      () => inferenceConfig({ model: 'llama3-8b', mode: 'decode', seqLen: 10, newTokens: 0, cluster: h200(2) }),
      (e: Error) => e instanceof UserError && /newTokens: expected an integer ≥ 1/.test(e.message),
    );
    assert.throws(
      () => inferenceConfig({ model: 'llama3-8b', mode: 'decode', seqLen: 10, bogus: 1, cluster: h200(2) }),
      (e: Error) => e instanceof UserError && /bogus: unknown field/.test(e.message),
    );
  });

  it('keys a decode step reads follow the mask: causal all, a window its width, documents the last one', () => {
    const cfg = (mask: string, extra: Record<string, unknown> = {}): InferenceConfig =>
      inferenceConfig({
        model: 'llama3-8b',
        mode: 'decode',
        seqLen: 1000,
        newTokens: 4,
        mask,
        cluster: h200(1),
        ...extra,
      })!;
    assert.equal(keysRead(cfg('causal')), 1004);
    assert.equal(keysRead(cfg('sliding:100,0')), 104);
    assert.equal(keysRead(cfg('document-causal', { cuSeqlens: [0, 300, 1004] })), 704);
  });
});

describe('planner: decode', () => {
  it('time per step follows the bytes of K/V read: twice the context, twice the read; twice the ranks, half', () => {
    const read = (P: number, cp: number): number =>
      plan({ model: ATTN_ONLY, mode: 'decode', seqLen: P, cluster: h200(8) }, { tp: 1, cp }).breakdown['kv read']!;
    const launches = read(1, 1); // the fixed cost, nothing to read
    assert.ok(Math.abs((read(1 << 20, 1) - launches) / (read(1 << 19, 1) - launches) - 2) < 1e-3);
    assert.ok(Math.abs((read(1 << 20, 4) - launches) / (read(1 << 20, 8) - launches) - 2) < 1e-3);
    const p = plan({ model: ATTN_ONLY, mode: 'decode', seqLen: 1 << 20, cluster: h200(8) }, { tp: 1, cp: 8 });
    assert.ok(
      p.breakdown['partial gather']! > 0 && p.breakdown.merge! > 0,
      'several ranks pay the exchange and the merge',
    );
  });

  it('PyTorch SDPA decode reads on one H200: the predicted read is within 6% of the best backend in every row', () => {
    const errors = SDPA_DECODE_H200.map((r) => {
      const p = plan(
        { model: ATTN_ONLY, mode: 'decode', seqLen: r.context, batchSeqs: r.batch, cluster: h200(1) },
        { tp: 1, cp: 1 },
      );
      const bytes = r.batch * (r.context + 1) * 2 * 8 * 128 * 2;
      const measured = bytes / (Math.max(r.fa2TBs, r.cudnnTBs) * 1e9); // ms
      return (p.breakdown['kv read']! - measured) / measured;
    });
    // −5.1%, +0.3%, +0.4%, +2.6% (docs/inference.md): the fixed cost is weft's kernel's, and
    // SDPA's best at 1 × 128K (3.7 TB/s) pays more than that
    assert.ok(
      errors.every((e) => Math.abs(e) < 0.06),
      errors.join(', '),
    );
  });
});

describe("planner: weft's own one-GPU records (docs/validation.md)", () => {
  it('decode: every kernel row and cache step within 15%', () => {
    const checks = weftDecodeChecks();
    assert.ok(checks.length >= 30);
    const off = checks
      .filter((c) => Math.abs(relErr(c)) > 0.15)
      .map((c) => `${c.label}: ${(100 * relErr(c)).toFixed(1)}%`);
    assert.deepEqual(off, []);
  });

  it("decode: the kernel's fixed cost is the minimax fit over the record's kernel rows", () => {
    // DECODE_FIXED_US is not set by hand: it is the record's fit, rounded to 0.1 µs
    assert.ok(Math.abs(decodeFixedFit() - DECODE_FIXED_US) < 0.05, `fit ${decodeFixedFit()} µs`);
  });

  it('prefill onto a 120K cache: both passes within 15% of the recorded step', () => {
    const checks = weftPrefillChecks();
    assert.equal(checks.length, 4);
    for (const c of checks) assert.ok(Math.abs(relErr(c)) <= 0.15, `${c.label}: ${(100 * relErr(c)).toFixed(1)}%`);
  });
});

describe('planner: prefill onto a cached context', () => {
  it('pass-Q for few new tokens on a long cache over slow links, pass-KV for many; the faster one is chosen', () => {
    const at = (P: number, T: number): InferencePlan =>
      plan({ model: LLAMA3_405B, mode: 'prefill', seqLen: P, newTokens: T, cluster: hosts(4) }, { tp: 8, cp: 4 });
    const few = at(127000, 1000),
      many = at(64000, 64000);
    assert.equal(few.layout.pass, 'q');
    assert.equal(many.layout.pass, 'kv');
    for (const p of [few, many])
      assert.equal(p.predicted!.stepMs, Math.min(p.predicted!.passKvMs!, p.predicted!.passQMs!));
    // where K/V transfers hide behind compute (fast links, one node), pass-KV costs nothing extra
    const fast = plan(
      {
        model: LLAMA3_405B,
        mode: 'prefill',
        seqLen: 0,
        newTokens: 65536,
        cluster: { nodes: 1, gpusPerNode: 8, gpu: 'h200' },
      },
      { tp: 1, cp: 8 },
    );
    assert.equal(fast.layout.pass, 'kv');
  });

  it('the crossover on 4 hosts at 128K: pass-Q below it, pass-KV above, near the published ≈5% (model: 1–2%)', () => {
    const passAt = (miss: number): string | undefined => {
      const T = Math.round(PASS_CROSSOVER.total * miss);
      return plan(
        {
          model: LLAMA3_405B,
          mode: 'prefill',
          seqLen: PASS_CROSSOVER.total - T,
          newTokens: T,
          cluster: hosts(PASS_CROSSOVER.nodes),
        },
        { tp: 8, cp: 4 },
      ).layout.pass;
    };
    assert.equal(passAt(0.01), 'q');
    assert.equal(passAt(0.1), 'kv');
    // the model's crossover lies between 1% and 2.5%, below the published ≈5%: stated in docs/inference.md
    assert.equal(passAt(0.025), 'kv');
  });

  it('arXiv 2411.01783 full-prefill TTFT rows: stated errors −36%, −36%, −2% (the model misses the 128K rows low)', () => {
    const errors = CP_INFERENCE_TTFT.map((r) => {
      const p = plan(
        { model: LLAMA3_405B, mode: 'prefill', seqLen: 0, newTokens: r.tokens, cluster: hosts(r.nodes) },
        { tp: 8, cp: r.nodes },
      );
      return (p.predicted!.stepMs / 1000 - r.seconds) / r.seconds;
    });
    assert.deepEqual(
      errors.map((e) => Math.round(e * 100)),
      [-36, -36, -2],
    );
  });

  it('a layout that cannot hold the cache is marked and sorted last', () => {
    const cfg = inferenceConfig({
      model: 'llama3-70b',
      mode: 'decode',
      seqLen: 1 << 20,
      batchSeqs: 8,
      cluster: h200(8),
    })!;
    const ctx = buildContext(cfg.base);
    const plans = planInference(cfg, ctx.rates, ctx.net);
    const bad = plans.filter((p) => !p.feasible);
    assert.ok(bad.length > 0 && bad.every((p) => /GiB per GPU/.test(p.reason!)));
    const firstBad = plans.findIndex((p) => !p.feasible);
    assert.ok(plans.slice(firstBad).every((p) => !p.feasible));
  });
});
