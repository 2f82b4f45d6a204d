// Link classes and collective costs. A link is priced as latency + bytes / (nominal GB/s ×
// measured efficiency); `GBps` is per GPU per direction, so concurrent transfers of different GPUs
// do not slow each other, while transfers of one GPU in one direction share its port — except in
// a PCIe tree (pcie.ts), where transfers leaving a switch share its uplink and all-to-alls between
// switches pass the CPU root complex.
import type { LinkSpec } from './hardware.js';
import type { PcieTree } from './pcie.js';

export type LinkClass = 'intra' | 'inter';

export interface Network {
  intra: LinkSpec;
  inter: LinkSpec;
  p2pEfficiency: number;
  collectiveEfficiency: number;
  pcie?: PcieTree;
}

/** How a process group lies on the cluster. */
export interface GroupShape {
  size: number;
  /** most members on one node */
  perNode: number;
  nodes: number;
  /** in a PCIe tree: the most member pairs of an all-to-all through one switch uplink and one root complex (pcie.ts) */
  pcie?: { uplinkPairs: number; rcPairs: number };
}

export type CollectiveOp = 'all-to-all' | 'all-gather' | 'reduce-scatter' | 'all-reduce';

/** One transfer; `share` of the link's bandwidth (below 1 where it shares a PCIe uplink). */
export function p2pMs(net: Network, bytes: number, cls: LinkClass, share = 1): number {
  const l = cls === 'intra' ? net.intra : net.inter;
  return l.latencyUs / 1000 + bytes / (l.GBps * share * net.p2pEfficiency * 1e6);
}

/**
 * One collective over a group; `bytes` is each member's full buffer (all-to-all: what it sends
 * in total, itself included; all-gather: the gathered output; reduce-scatter / all-reduce: the
 * input). Ring algorithms move (n−1)/n of the buffer through every member; across nodes the
 * members of a node drive one NIC share each, so the inter-node part runs at perNode × GBps.
 * All-to-all sends each peer its share directly, intra- and inter-node peers concurrently.
 */
export function collectiveMs(net: Network, op: CollectiveOp, bytes: number, g: GroupShape): number {
  const n = g.size;
  if (n <= 1 || bytes <= 0) return 0;
  const eff = net.collectiveEfficiency;
  const intraBw = net.intra.GBps * eff * 1e6,
    interBw = net.inter.GBps * eff * 1e6;
  if (op === 'all-to-all') {
    const share = bytes / n;
    const intraPeers = g.perNode - 1,
      interPeers = n - g.perNode;
    let t = Math.max((intraPeers * share) / intraBw, interPeers > 0 ? (interPeers * share) / interBw : 0);
    if (net.pcie && g.pcie) {
      // between switches: through the uplinks, and forwarded by the root complexes
      t = Math.max(
        t,
        (g.pcie.uplinkPairs * share) / (net.pcie.uplinkGBps * eff * 1e6),
        (g.pcie.rcPairs * share) / (net.pcie.rootComplexGBps * 1e6),
      );
    }
    const lat = interPeers > 0 ? net.inter.latencyUs : net.intra.latencyUs;
    return lat / 1000 + t;
  }
  const moved = ((n - 1) / n) * bytes;
  const bw = g.nodes > 1 ? Math.min(g.perNode > 1 ? intraBw : Infinity, g.perNode * interBw) : intraBw;
  const lat = ((n - 1) * (g.nodes > 1 ? net.inter.latencyUs : net.intra.latencyUs)) / 1000;
  const once = lat + moved / bw;
  return op === 'all-reduce' ? 2 * once : once;
}
