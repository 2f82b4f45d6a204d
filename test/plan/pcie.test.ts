// The PCIe tree of L20-class nodes (src/plan/pcie.ts): which pairs of an all-to-all cross switch
// uplinks and root complexes, how ring hops share uplinks, that the root complex prices
// all-to-alls only, the config field, and the simulator's agreement.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { parseConfig } from '../../src/plan/config.js';
import { L20_BOX } from '../../src/plan/hardware.js';
import { completeLayout, ringPatterns, ulyssesGroup } from '../../src/plan/layout.js';
import { allToAllLoads, hopShares } from '../../src/plan/pcie.js';
import { buildContext, evaluate, prepare } from '../../src/plan/search.js';
import { simulate } from '../../src/sim/simulate.js';

const l20 = (extra: Record<string, unknown> = {}, seqLen = 32768) =>
  parseConfig({
    model: 'llama3-8b',
    mode: 'attention-forward',
    seqLen,
    mask: 'causal',
    implementation: 'pytorch',
    kernel: 'fa2',
    cluster: { nodes: 1, gpusPerNode: 8, gpu: 'l20', ...extra },
  });

test('all-to-all pairs through uplinks and root complexes: inside a switch none, across a socket both complexes', async () => {
  const cl = l20().cluster;
  assert.deepEqual(cl.pcie, L20_BOX);
  assert.deepEqual(allToAllLoads(cl, [0, 1]), { uplinkPairs: 0, rcPairs: 0 });
  // one socket, two switches: each GPU reaches 2 peers beyond its switch
  assert.deepEqual(allToAllLoads(cl, [0, 1, 2, 3]), { uplinkPairs: 4, rcPairs: 8 });
  // the whole box: 6 peers beyond the switch; a root complex forwards its socket's 8 cross-switch
  // pairs and all 32 pairs between the sockets
  assert.deepEqual(allToAllLoads(cl, [0, 1, 2, 3, 4, 5, 6, 7]), { uplinkPairs: 12, rcPairs: 40 });
  // one GPU per switch, one socket: 2 pairs leave each switch
  assert.deepEqual(allToAllLoads(cl, [0, 2]), { uplinkPairs: 1, rcPairs: 2 });
});

test('ring hops share a switch uplink only with the hops that cross it at the same time', async () => {
  const cfg = l20();
  const cl = cfg.cluster;
  // a ring over the 8 GPUs in order: one hop leaves each switch, at the link's full rate
  assert.deepEqual([...hopShares(cl, (g) => (g + 1) % 8)], [1, 1, 1, 1, 1, 1, 1, 1]);
  // Ulysses 2 × ring 4, head-first: rings 0-2-4-6 and 1-3-5-7, two hops leave every switch
  const usp = completeLayout({ ulysses: 2, ring: 4 }, cfg);
  const pats = ringPatterns(usp, cl);
  assert.ok(pats.every((p) => p.share.every((s) => s === L20_BOX.uplinkGBps / (2 * cl.intraNode.GBps))));
  // NVLink nodes have no tree
  const h = parseConfig({ model: 'llama3-8b', seqLen: 32768, cluster: { nodes: 1, gpusPerNode: 8, gpu: 'h200' } });
  assert.equal(h.cluster.pcie, undefined);
  assert.ok(
    ringPatterns(completeLayout({ ulysses: 2, ring: 4 }, h), h.cluster).every((p) => p.share.every((s) => s === 1)),
  );
  assert.equal(ulyssesGroup(completeLayout({ ulysses: 8 }, h), h.cluster).pcie, undefined);
});

test('the root complex prices all-to-alls, not ring transfers', async () => {
  const slow = { pcie: { rootComplexGBps: L20_BOX.rootComplexGBps / 4 } };
  const ms = async (extra: Record<string, unknown>, l: Parameters<typeof completeLayout>[0]): Promise<number> => {
    const cfg = l20(extra);
    return (await evaluate(buildContext(cfg), completeLayout(l, cfg))).prediction!.stepMs;
  };
  assert.equal(await ms(slow, { ring: 8 }), await ms({}, { ring: 8 }));
  assert.ok((await ms(slow, { ulysses: 8 })) > 2 * (await ms({}, { ulysses: 8 })));
  // and Ulysses inside one switch never reaches it
  assert.equal(await ms(slow, { ulysses: 2, ring: 4 }), await ms({}, { ulysses: 2, ring: 4 }));
});

test("cluster.pcie: the preset's tree, replaced field by field, removed with null; bad fields are named", async () => {
  assert.equal(l20({ pcie: { gpusPerSwitch: 4 } }).cluster.pcie!.gpusPerSwitch, 4);
  assert.equal(l20({ pcie: { gpusPerSwitch: 4 } }).cluster.pcie!.rootComplexGBps, L20_BOX.rootComplexGBps);
  assert.equal(l20({ pcie: null }).cluster.pcie, undefined);
  const bad = (pcie: unknown, field: RegExp): void =>
    assert.throws(
      () => l20({ pcie }),
      (e: unknown) => e instanceof UserError && field.test(e.message),
    );
  bad({ gpusPerSwitch: 0 }, /^cluster\.pcie\.gpusPerSwitch: expected an integer > 0/);
  bad({ switchesPerSocket: 1.5 }, /^cluster\.pcie\.switchesPerSocket/);
  bad({ rootComplexGBps: 'slow' }, /^cluster\.pcie\.rootComplexGBps/);
  bad({ uplinks: 2 }, /^cluster\.pcie\.uplinks: unknown field/);
  bad(3, /^cluster\.pcie: expected an object/);
  // a custom PCIe card gives the whole tree
  const custom = {
    nodes: 1,
    gpusPerNode: 4,
    gpu: { bf16Tflops: 100, memGiB: 40, hbmTBs: 1, class: 'ada' },
    intraNode: { GBps: 32 },
  };
  assert.throws(
    () => parseConfig({ model: 'llama3-8b', seqLen: 8192, cluster: { ...custom, pcie: { gpusPerSwitch: 2 } } }),
    /cluster\.pcie\.switchesPerSocket: missing/,
  );
  const c = parseConfig({
    model: 'llama3-8b',
    seqLen: 8192,
    cluster: { ...custom, pcie: { gpusPerSwitch: 2, switchesPerSocket: 1, uplinkGBps: 32, rootComplexGBps: 10 } },
  });
  assert.equal(c.cluster.pcie!.source, 'config');
});

test('the simulator agrees with the analytical model on the PCIe box', async () => {
  for (const l of [{ ring: 8 }, { ulysses: 2, ring: 4 }, { ulysses: 4, ring: 2 }, { ulysses: 8 }] as Parameters<
    typeof completeLayout
  >[0][]) {
    const cfg = parseConfig({
      model: 'llama3-8b',
      mode: 'attention',
      seqLen: 65536,
      mask: 'full',
      kernel: 'fa2',
      cluster: { nodes: 1, gpusPerNode: 8, gpu: 'l20' },
    });
    const ctx = buildContext(cfg),
      pl = completeLayout({ ...l, shard: 'contiguous' }, cfg);
    await prepare(ctx, [pl]);
    const sim = simulate(ctx, pl);
    assert.ok(
      Math.abs(sim.stepMs / sim.analyticStepMs - 1) < 1e-9,
      `${JSON.stringify(l)}: ${sim.stepMs} vs ${sim.analyticStepMs}`,
    );
  }
});
