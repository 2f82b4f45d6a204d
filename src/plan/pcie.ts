// The PCIe tree inside a node of PCIe cards (no NVLink): GPUs sit behind PCIe switches, each
// switch has one uplink to its CPU socket's root complex, and the sockets are joined by the CPU
// interconnect. Two facts shape the cost of communication there:
//  - transfers leaving a switch share its uplink, so a ring hop is as fast as its GPU link only
//    when it is the uplink's one flow;
//  - all-to-all traffic between switches is forwarded by the CPU root complex, which does that
//    far worse than a PCIe switch: NCCL's maintainers, "In general CPUs make very poor PCI
//    switches and we often find that A2A performance is bad when P2P is used across CPUs ...
//    AllReduce puts less stress on the CPU interconnect" (github.com/NVIDIA/nccl/issues/1603), and
//    traffic that goes back through the CPU uses the CPU–switch link in both directions
//    (github.com/NVIDIA/nccl/issues/1086). So all-to-alls are priced against a root-complex
//    forwarding rate, ring (point-to-point) traffic against links and uplinks only.
import type { Cluster, PcieTree } from './types.js';

export type { PcieTree } from './types.js';

const switchOf = (t: PcieTree, local: number): number => Math.floor(local / t.gpusPerSwitch);
const socketOf = (t: PcieTree, local: number): number => Math.floor(switchOf(t, local) / t.switchesPerSocket);

/**
 * How an all-to-all over `ranks` loads the tree: the most ordered member pairs leaving (or
 * entering) one switch through its uplink, and the most passing through one root complex (a pair
 * between sockets passes through both). Pairs between nodes leave by the network and are priced
 * there. Each pair carries one member's share of its buffer.
 */
export function allToAllLoads(cl: Cluster, ranks: readonly number[]): { uplinkPairs: number; rcPairs: number } {
  const t = cl.pcie!;
  const out = new Map<string, number>(),
    into = new Map<string, number>(),
    rc = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string): void => {
    m.set(k, (m.get(k) ?? 0) + 1);
  };
  for (const a of ranks) {
    for (const b of ranks) {
      const na = Math.floor(a / cl.gpusPerNode),
        nb = Math.floor(b / cl.gpusPerNode);
      if (a === b || na !== nb) continue;
      const la = a % cl.gpusPerNode,
        lb = b % cl.gpusPerNode;
      if (switchOf(t, la) === switchOf(t, lb)) continue;
      bump(out, `${na}/${switchOf(t, la)}`);
      bump(into, `${na}/${switchOf(t, lb)}`);
      bump(rc, `${na}/${socketOf(t, la)}`);
      if (socketOf(t, la) !== socketOf(t, lb)) bump(rc, `${na}/${socketOf(t, lb)}`);
    }
  }
  const max = (m: Map<string, number>): number => Math.max(0, ...m.values());
  return { uplinkPairs: Math.max(max(out), max(into)), rcPairs: max(rc) };
}

/**
 * The share of its link's bandwidth a transfer from local GPU `a` to `b` of one node gets when
 * every GPU of the node sends to `next(g)` at once: 1 inside a switch; beyond it, the uplinks of
 * both switches are split among the transfers crossing them.
 */
export function hopShares(cl: Cluster, next: (local: number) => number): Float64Array {
  const t = cl.pcie!,
    n = cl.gpusPerNode;
  const out = new Map<number, number>(),
    into = new Map<number, number>();
  for (let g = 0; g < n; g++) {
    const h = next(g);
    if (h < 0 || switchOf(t, g) === switchOf(t, h)) continue;
    out.set(switchOf(t, g), (out.get(switchOf(t, g)) ?? 0) + 1);
    into.set(switchOf(t, h), (into.get(switchOf(t, h)) ?? 0) + 1);
  }
  const link = cl.intraNode.GBps;
  const share = new Float64Array(n).fill(1);
  for (let g = 0; g < n; g++) {
    const h = next(g);
    if (h < 0 || switchOf(t, g) === switchOf(t, h)) continue;
    const flows = Math.max(out.get(switchOf(t, g))!, into.get(switchOf(t, h))!);
    share[g] = Math.min(1, t.uplinkGBps / (flows * link));
  }
  return share;
}
