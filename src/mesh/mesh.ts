// A device mesh: ranks as coordinates along named axes. The first axis varies fastest, i.e. its
// groups are runs of consecutive ranks — on real machines, the GPUs of one node, which is where
// the axis with the most traffic belongs. A group along an axis runs on its parent's transfers
// (SubgroupComm): the mesh names the members, so no communicator is negotiated, and the same mesh
// works over worker threads and over NCCL.
import type { Comm } from '../comm/comm.js';
import { SubgroupComm } from '../comm/subgroup.js';
import type { Device } from '../device/device.js';

export interface Axis {
  readonly name: string;
  readonly size: number;
}

export type Placement = 'head-first' | 'context-first';
export const PLACEMENTS: readonly Placement[] = ['head-first', 'context-first'];

export class Mesh {
  readonly size: number;
  private readonly stride: Map<string, number>;

  /** Axes fastest first: rank = Σ coord(axis) · (product of the sizes of the axes before it). */
  constructor(readonly axes: readonly Axis[]) {
    this.stride = new Map();
    let s = 1;
    for (const a of axes) {
      if (!Number.isInteger(a.size) || a.size < 1) throw new Error(`mesh: axis '${a.name}' has size ${a.size}`);
      if (this.stride.has(a.name)) throw new Error(`mesh: axis '${a.name}' appears twice`);
      this.stride.set(a.name, s);
      s *= a.size;
    }
    this.size = s;
  }

  private axis(name: string): { stride: number; size: number } {
    const stride = this.stride.get(name);
    if (stride === undefined)
      throw new Error(`mesh: no axis '${name}' (axes: ${this.axes.map((a) => a.name).join(', ')})`);
    return { stride, size: this.axes.find((a) => a.name === name)!.size };
  }

  coord(rank: number, name: string): number {
    const { stride, size } = this.axis(name);
    return Math.floor(rank / stride) % size;
  }

  /** The rank whose coordinates are `coords` (every axis must be given). */
  rankOf(coords: Readonly<Record<string, number>>): number {
    let r = 0;
    for (const a of this.axes) {
      const c = coords[a.name];
      if (c === undefined || !Number.isInteger(c) || c < 0 || c >= a.size)
        throw new Error(`mesh: coordinate ${a.name}=${c} outside [0, ${a.size})`);
      r += c * this.stride.get(a.name)!;
    }
    return r;
  }

  /** `rank` with its coordinate along `name` replaced by `value`. */
  moved(rank: number, name: string, value: number): number {
    const { stride } = this.axis(name);
    return rank + (value - this.coord(rank, name)) * stride;
  }

  /** The ranks of the group along `name` through `rank`, in group-rank order. */
  members(rank: number, name: string): number[] {
    return Array.from({ length: this.axis(name).size }, (_, c) => this.moved(rank, name, c));
  }

  /**
   * The sub-group along `name` containing comm.rank, whose group rank is the coordinate; `comm`
   * itself when the axis spans it. `comm` must span the mesh; `device` does the group's copies and sums.
   */
  group(comm: Comm, name: string, device: Device): Comm {
    if (comm.size !== this.size) throw new Error(`mesh: ${this.size} ranks, but the group has ${comm.size}`);
    const members = this.members(comm.rank, name);
    return members.every((r, i) => r === i) && members.length === comm.size
      ? comm
      : new SubgroupComm(comm, members, device);
  }
}

/** USP: ulysses × ring; head-first keeps each Ulysses group on consecutive ranks. */
export function uspMesh(ulysses: number, ring: number, placement: Placement): Mesh {
  const u = { name: 'ulysses', size: ulysses },
    r = { name: 'ring', size: ring };
  return new Mesh(placement === 'head-first' ? [u, r] : [r, u]);
}

/** Double ring: inner rings on consecutive ranks, joined by an outer ring. */
export function doubleRingMesh(inner: number, outer: number): Mesh {
  return new Mesh([
    { name: 'inner', size: inner },
    { name: 'outer', size: outer },
  ]);
}
