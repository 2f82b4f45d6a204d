// The dry-run Comm: one rank of a group of any size, alone. Every operation completes at once and
// writes nothing (the buffers are shape-only), which is all a strategy needs to run its schedule:
// what it sends and receives depends on shapes and positions, never on data. Wrapped in
// TraceComm (trace.ts) it records every transfer under the step the strategy names.
// Sub-groups come from a Mesh over this group (SubgroupComm), which knows its members without
// asking the peers; split, which would need the peers' colours, is refused.
import { type Comm, DONE, type Work } from '../../comm/comm.js';

export class DryComm implements Comm {
  constructor(
    readonly rank: number,
    readonly size: number,
  ) {
    if (!Number.isInteger(rank) || rank < 0 || rank >= size)
      throw new Error(`dry comm: rank ${rank} outside a group of ${size}`);
  }
  sendRecv(): Work {
    return DONE;
  }
  allToAll(): Work {
    return DONE;
  }
  allGather(): Work {
    return DONE;
  }
  reduceScatter(): Work {
    return DONE;
  }
  allReduce(): Work {
    return DONE;
  }
  barrier(): Promise<void> {
    return Promise.resolve();
  }
  split(): Comm {
    throw new Error("dry comm: split needs the peers' colours; make sub-groups from a Mesh over this group");
  }
}
