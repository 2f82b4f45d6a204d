// How Ulysses splits heads over a group of u ranks: member c takes query heads
// [c·H/u, (c+1)·H/u) and needs the KV heads those map to (query head h uses KV head ⌊h/G⌋,
// G = H/Hkv). The all-to-all carries each member exactly that contiguous KV range, so when
// u > Hkv a KV head goes to every member that needs it — it is replicated by the all-to-all
// itself, never expanded to H heads before it. When a member's range does not map onto its
// query heads as a regular GQA group (neither u | Hkv nor Hkv | u), the member expands its KV
// heads locally after the all-to-all, one per query head, and sums their gradients back.
import type { Device } from '../device/device.js';
import type { Tensor } from '../tensor/host.js';

export class HeadPlan {
  readonly Hl: number; // query heads per member
  readonly G: number; // query heads per KV head

  constructor(
    readonly u: number,
    readonly H: number,
    readonly Hkv: number,
  ) {
    if (H % u !== 0) throw new Error(`ulysses: degree ${u} does not divide ${H} heads`);
    if (H % Hkv !== 0) throw new Error(`ulysses: ${H} heads are not a multiple of ${Hkv} KV heads`);
    this.Hl = H / u;
    this.G = H / Hkv;
  }

  /** KV heads [g0, g1) member c needs. */
  kv(c: number): [number, number] {
    return [Math.floor((c * this.Hl) / this.G), Math.floor(((c + 1) * this.Hl - 1) / this.G) + 1];
  }

  /** The global KV head of member c's local query head hl. */
  kvOf(c: number, hl: number): number {
    return Math.floor((c * this.Hl + hl) / this.G);
  }

  /** Can the kernel use member c's KV range as is (its query heads form regular GQA groups)? */
  regular(c: number): boolean {
    const [g0, g1] = this.kv(c),
      n = g1 - g0;
    if (this.Hl % n !== 0) return false;
    const per = this.Hl / n;
    for (let hl = 0; hl < this.Hl; hl++) if (Math.floor(hl / per) !== this.kvOf(c, hl) - g0) return false;
    return true;
  }

  /** Does some KV head go to more than one member (so its gradients must be summed)? */
  shared(): boolean {
    for (let c = 1; c < this.u; c++) if (this.kv(c)[0] < this.kv(c - 1)[1]) return true;
    return false;
  }

  /** Member c's KV range [T, n, D] expanded to one KV head per local query head [T, Hl, D]. */
  expand(device: Device, c: number, kv: Tensor): Tensor {
    const T = kv.shape[0]!,
      g0 = this.kv(c)[0];
    const out = device.zeros(kv.dtype, [T, this.Hl, ...kv.shape.slice(2)]);
    for (let hl = 0; hl < this.Hl; hl++)
      device.copyBox(kv, out, { src: [0, this.kvOf(c, hl) - g0], dst: [0, hl], size: [T, 1] });
    return out;
  }

  /** The inverse of expand for gradients: sum each expanded head into its KV head. */
  reduce(device: Device, c: number, g: Tensor): Tensor {
    const T = g.shape[0]!,
      [g0, g1] = this.kv(c);
    const out = device.zeros(g.dtype, [T, g1 - g0, ...g.shape.slice(2)]);
    const one = device.zeros(g.dtype, [T, 1, ...g.shape.slice(2)]);
    for (let hl = 0; hl < this.Hl; hl++) {
      device.copyBox(g, one, { src: [0, hl], dst: [0, 0], size: [T, 1] });
      addHeads(device, one, out, this.kvOf(c, hl) - g0);
    }
    device.release(one);
    return out;
  }
}

/** dst[:, h0 : h0 + n] += src, for src [T, n, …] (dtypes equal). */
export function addHeads(device: Device, src: Tensor, dst: Tensor, h0: number): void {
  const T = src.shape[0]!,
    n = src.shape[1]!;
  const tmp = device.zeros(dst.dtype, src.shape);
  device.copyBox(dst, tmp, { src: [0, h0], dst: [0, 0], size: [T, n] });
  device.add(tmp, src);
  device.copyBox(tmp, dst, { src: [0, 0], dst: [0, h0], size: [T, n] });
  device.release(tmp);
}
