// The CUDA implementation of the Device seam: everything is enqueued on the runtime's compute
// stream, so calls return at once and run in order on the GPU. Zero and constant fills are
// memsets; contiguous same-dtype copies cuMemcpyDtoDAsync; strided or converting box copies,
// casts and adds the vectorised rows kernel of builtins.ts (compiled on first use), or its
// generic kernels where a tensor is f64 or not 4-element aligned. `weft bench ops` times each.
import { type Box, checkBox, type Device } from '../../../device/device.js';
import { bytesPerElement, type DType, toBf16, toF16 } from '../../../tensor/dtype.js';
import { fmtShape, type HostTensor, hostZeros, shapeEq, type Tensor } from '../../../tensor/host.js';
import { BUILTIN_SOURCE, DTYPE_CODE } from './builtins.js';
import type { Driver } from './driver.js';
import type { CudaModule, Kernel } from './module.js';
import type { Stream } from './stream.js';
import { asCuda, CudaTensor } from './tensor.js';

/** What the device uses of its runtime; runtime.ts builds the one device over itself. */
export interface DeviceRuntime {
  readonly driver: Driver;
  readonly compute: Stream;
  readonly info: { readonly sms: number };
  compile(source: string, opts: { name: string }): CudaModule;
  empty(dtype: DType, shape: readonly number[]): CudaTensor;
  synchronize(): Promise<void>;
}

const CU_MEMORYTYPE_DEVICE = 2n;

interface Builtins {
  fill: Kernel;
  add: Kernel;
  copyBox: Kernel;
  rows4: Kernel;
}

/** One element's bits for a memset of 2 or 4 bytes; undefined for f64 (no 8-byte memset). */
function fillPattern(dtype: DType, value: number): number | undefined {
  if (dtype === 'f32') return new Uint32Array(Float32Array.of(value).buffer)[0];
  if (dtype === 'bf16') return toBf16(value);
  if (dtype === 'f16') return toF16(value);
  return undefined;
}

/** A run of rows, four elements at a time: pointers, row count, quads per row and row strides in quads. */
interface Rows4 {
  src: bigint;
  dst: bigint;
  rows: number;
  quads: number;
  ss: number;
  ds: number;
}

export class CudaDevice implements Device {
  readonly kind = 'cuda' as const;
  private builtins?: Builtins;

  constructor(readonly rt: DeviceRuntime) {}

  private kernels(): Builtins {
    if (!this.builtins) {
      const m = this.rt.compile(BUILTIN_SOURCE, { name: 'weft_builtins.cu' });
      this.builtins = {
        fill: m.kernel('weft_fill', ['ptr', 'i32', 'u64', 'f64']),
        add: m.kernel('weft_add', ['ptr', 'i32', 'ptr', 'i32', 'u64']),
        copyBox: m.kernel('weft_copy_box', [
          'ptr',
          'i32',
          'ptr',
          'i32',
          'u64',
          'u64',
          'u64',
          'u64',
          'u64',
          'u64',
          'u64',
          'u64',
          'u64',
        ]),
        rows4: m.kernel('weft_rows4', ['ptr', 'i32', 'ptr', 'i32', 'u64', 'u64', 'u64', 'u64', 'i32']),
      };
    }
    return this.builtins;
  }

  /** A grid-stride launch shape for n elements. */
  private grid(n: number): { grid: number; block: number } {
    return { grid: Math.max(1, Math.min(Math.ceil(n / 256), this.rt.info.sms * 16)), block: 256 };
  }

  /** Uninitialised memory (contents undefined until written). */
  empty(dtype: DType, shape: readonly number[]): CudaTensor {
    return this.rt.empty(dtype, shape);
  }

  zeros(dtype: DType, shape: readonly number[]): CudaTensor {
    const t = this.empty(dtype, shape);
    if (t.bytes > 0) this.rt.driver.call('cuMemsetD8Async', t.ptr, 0, t.bytes, this.rt.compute.handle);
    return t;
  }

  full(dtype: DType, shape: readonly number[], value: number): CudaTensor {
    const t = this.empty(dtype, shape);
    if (t.numel === 0) return t;
    const bits = fillPattern(dtype, value);
    if (bits === undefined) this.kernels().fill.launch(this.grid(t.numel), t, DTYPE_CODE[dtype], t.numel, value);
    else
      this.rt.driver.call(
        dtype === 'f32' ? 'cuMemsetD32Async' : 'cuMemsetD16Async',
        t.ptr,
        bits,
        t.numel,
        this.rt.compute.handle,
      );
    return t;
  }

  /**
   * The vectorised kernel over rows of quads when both types are f32/bf16/f16 and every start is
   * 16-byte aligned (8 for 16-bit types); false when it does not apply (the generic kernel then runs).
   */
  private rows4(st: DType, dt: DType, r: Rows4, add: boolean): boolean {
    if (st === 'f64' || dt === 'f64') return false;
    const [se, de] = [bytesPerElement(st), bytesPerElement(dt)];
    if (r.src % BigInt(4 * se) !== 0n || r.dst % BigInt(4 * de) !== 0n) return false;
    const bx = Math.min(256, 2 ** Math.ceil(Math.log2(r.quads))),
      by = 256 / bx;
    const gx = Math.min(Math.ceil(r.quads / bx), this.rt.info.sms * 16);
    const gy = Math.min(Math.ceil(r.rows / by), 65535, Math.max(1, Math.floor((this.rt.info.sms * 16) / gx)));
    this.kernels().rows4.launch(
      { grid: [gx, gy], block: [bx, by] },
      r.src,
      DTYPE_CODE[st],
      r.dst,
      DTYPE_CODE[dt],
      r.rows,
      r.quads,
      r.ss,
      r.ds,
      add ? 1 : 0,
    );
    return true;
  }

  copyBox(srcT: Tensor, dstT: Tensor, box: Box): void {
    const src = asCuda(srcT, 'copyBox'),
      dst = asCuda(dstT, 'copyBox');
    const { sb, db, inner } = checkBox(src, dst, box);
    const [na, nb] = box.size;
    if (na === 0 || nb === 0 || inner === 0) return;
    const run = nb * inner; // contiguous elements per row of the box on both sides
    if (src.dtype !== dst.dtype || (na > 1 && (run !== sb * inner || run !== db * inner))) {
      // converting, or strided rows (cuMemcpy2D reached 0.60–0.67 of HBM on narrow rows): the rows kernel
      const so = (box.src[0] * sb + box.src[1]) * inner,
        dof = (box.dst[0] * db + box.dst[1]) * inner;
      if (
        run % 4 === 0 &&
        (sb * inner) % 4 === 0 &&
        (db * inner) % 4 === 0 &&
        this.rows4(
          src.dtype,
          dst.dtype,
          {
            src: src.ptr + BigInt(so * bytesPerElement(src.dtype)),
            dst: dst.ptr + BigInt(dof * bytesPerElement(dst.dtype)),
            rows: na,
            quads: run / 4,
            ss: (sb * inner) / 4,
            ds: (db * inner) / 4,
          },
          false,
        )
      )
        return;
    }
    if (src.dtype !== dst.dtype) {
      const n = na * nb * inner;
      this.kernels().copyBox.launch(
        this.grid(n),
        src,
        DTYPE_CODE[src.dtype],
        dst,
        DTYPE_CODE[dst.dtype],
        na,
        nb,
        inner,
        sb,
        db,
        box.src[0],
        box.src[1],
        box.dst[0],
        box.dst[1],
      );
      return;
    }
    const e = bytesPerElement(src.dtype);
    const width = nb * inner * e,
      srcPitch = sb * inner * e,
      dstPitch = db * inner * e;
    const srcOff = BigInt((box.src[0] * sb + box.src[1]) * inner * e),
      dstOff = BigInt((box.dst[0] * db + box.dst[1]) * inner * e);
    if ((width === srcPitch && width === dstPitch) || na === 1) {
      this.rt.driver.call('cuMemcpyDtoDAsync', dst.ptr + dstOff, src.ptr + srcOff, width * na, this.rt.compute.handle);
      return;
    }
    // CUDA_MEMCPY2D as 16 eight-byte slots (the two memory-type enums sit in padded slots)
    const p = new BigUint64Array(16);
    p[2] = CU_MEMORYTYPE_DEVICE;
    p[4] = src.ptr + srcOff;
    p[6] = BigInt(srcPitch);
    p[9] = CU_MEMORYTYPE_DEVICE;
    p[11] = dst.ptr + dstOff;
    p[13] = BigInt(dstPitch);
    p[14] = BigInt(width);
    p[15] = BigInt(na);
    this.rt.driver.call('cuMemcpy2DAsync', p, this.rt.compute.handle);
  }

  add(dstT: Tensor, srcT: Tensor): void {
    const dst = asCuda(dstT, 'add'),
      src = asCuda(srcT, 'add');
    if (!shapeEq(dst.shape, src.shape)) throw new Error(`add: ${fmtShape(dst.shape)} += ${fmtShape(src.shape)}`);
    if (dst.numel === 0) return;
    if (
      dst.numel % 4 === 0 &&
      this.rows4(
        src.dtype,
        dst.dtype,
        { src: src.ptr, dst: dst.ptr, rows: 1, quads: dst.numel / 4, ss: 0, ds: 0 },
        true,
      )
    )
      return;
    this.kernels().add.launch(this.grid(dst.numel), dst, DTYPE_CODE[dst.dtype], src, DTYPE_CODE[src.dtype], dst.numel);
  }

  cast(srcT: Tensor, dtype: DType): CudaTensor {
    const src = asCuda(srcT, 'cast');
    const out = this.empty(dtype, src.shape);
    if (src.numel === 0) return out;
    if (dtype === src.dtype)
      this.rt.driver.call('cuMemcpyDtoDAsync', out.ptr, src.ptr, src.bytes, this.rt.compute.handle);
    else if (
      src.numel % 4 !== 0 ||
      !this.rows4(src.dtype, dtype, { src: src.ptr, dst: out.ptr, rows: 1, quads: src.numel / 4, ss: 0, ds: 0 }, false)
    )
      this.kernels().copyBox.launch(
        this.grid(src.numel),
        src,
        DTYPE_CODE[src.dtype],
        out,
        DTYPE_CODE[dtype],
        1,
        1,
        src.numel,
        1,
        1,
        0,
        0,
        0,
        0,
      );
    return out;
  }

  /**
   * Host → device. From pageable memory the driver stages the whole buffer before returning,
   * so the host array may change afterwards.
   */
  upload(t: HostTensor): CudaTensor {
    const out = this.empty(t.dtype, t.shape);
    if (out.bytes > 0) this.rt.driver.call('cuMemcpyHtoDAsync', out.ptr, t.data, out.bytes, this.rt.compute.handle);
    return out;
  }

  /**
   * 32-bit integers (positions, mask intervals) as a device buffer of 4-byte words; its dtype
   * says f32 only because Device tensors are floating point — kernels read it as int.
   */
  uploadInt32(a: Int32Array): CudaTensor {
    const words = a.length > 0 ? new Float32Array(a.buffer, a.byteOffset, a.length) : new Float32Array(1);
    return this.upload({ dtype: 'f32', shape: [words.length], data: words });
  }

  /** Device → host, after everything enqueued so far (waits without blocking the event loop). */
  async download(t: Tensor): Promise<HostTensor> {
    const src = asCuda(t, 'download');
    await this.rt.synchronize();
    const out = hostZeros(src.dtype, src.shape);
    if (src.bytes > 0) {
      this.rt.driver.call('cuMemcpyDtoHAsync', out.data, src.ptr, src.bytes, this.rt.compute.handle);
      this.rt.driver.call('cuStreamSynchronize', this.rt.compute.handle);
    }
    return out;
  }

  async synchronize(): Promise<void> {
    await this.rt.synchronize();
  }

  release(t: Tensor): void {
    asCuda(t, 'release').release();
  }
}
