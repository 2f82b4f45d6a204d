// The CPU device: tensors are host tensors, optionally in SharedArrayBuffers so worker ranks
// can hand them to each other without copies.
import { type DType } from '../../tensor/dtype.js';
import {
  castHost,
  fmtShape,
  getter,
  type HostTensor,
  hostZeros,
  setter,
  shapeEq,
  type Tensor,
} from '../../tensor/host.js';
import { type Box, checkBox, type Device } from '../../device/device.js';

function host(t: Tensor): HostTensor {
  if (!('data' in t)) throw new Error('cpu device: tensor is not in host memory');
  return t as HostTensor;
}

export class CpuDevice implements Device {
  readonly kind = 'cpu' as const;
  constructor(private readonly shared = false) {}

  zeros(dtype: DType, shape: readonly number[]): HostTensor {
    return hostZeros(dtype, shape, this.shared);
  }

  empty(dtype: DType, shape: readonly number[]): HostTensor {
    return this.full(dtype, shape, NaN);
  }

  full(dtype: DType, shape: readonly number[], value: number): HostTensor {
    const t = this.zeros(dtype, shape);
    const set = setter(t);
    for (let i = 0; i < t.data.length; i++) set(i, value);
    return t;
  }

  copyBox(srcT: Tensor, dstT: Tensor, box: Box): void {
    const src = host(srcT),
      dst = host(dstT);
    const { sb, db, inner } = checkBox(src, dst, box);
    const [na, nb] = box.size;
    const run = nb * inner;
    const same = src.dtype === dst.dtype;
    const get = getter(src),
      set = setter(dst);
    for (let a = 0; a < na; a++) {
      const so = ((box.src[0] + a) * sb + box.src[1]) * inner;
      const dO = ((box.dst[0] + a) * db + box.dst[1]) * inner;
      if (same) dst.data.set(src.data.subarray(so, so + run) as never, dO);
      else for (let i = 0; i < run; i++) set(dO + i, get(so + i));
    }
  }

  add(dstT: Tensor, srcT: Tensor): void {
    const dst = host(dstT),
      src = host(srcT);
    if (!shapeEq(dst.shape, src.shape)) throw new Error(`add: ${fmtShape(dst.shape)} += ${fmtShape(src.shape)}`);
    const get = getter(src),
      getD = getter(dst),
      set = setter(dst);
    for (let i = 0; i < dst.data.length; i++) set(i, getD(i) + get(i));
  }

  cast(src: Tensor, dtype: DType): HostTensor {
    return castHost(host(src), dtype, this.shared);
  }

  upload(t: HostTensor): HostTensor {
    return this.shared && !(t.data.buffer instanceof SharedArrayBuffer) ? castHost(t, t.dtype, true) : t;
  }

  async download(t: Tensor): Promise<HostTensor> {
    return host(t);
  }

  release(t: Tensor): void {
    const h = host(t),
      set = setter(h);
    for (let i = 0; i < h.data.length; i++) set(i, NaN);
  }

  async synchronize(): Promise<void> {}
}
