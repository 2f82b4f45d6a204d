// The CUDA backend for the registry: opens this process's GPU. Every way it can fail (no koffi,
// no libcuda, no device, no NVRTC) surfaces as an error whose first line says which.
import type { Backend } from '../../registry.js';
import type { CudaDevice } from './device.js';
import { GpuError } from './errors.js';
import { type CudaRuntime, openCuda } from './runtime.js';

export interface CudaBackend extends Backend {
  readonly name: 'cuda';
  readonly device: CudaDevice;
  readonly runtime: CudaRuntime;
}

export async function initCudaBackend(): Promise<CudaBackend> {
  let rt: CudaRuntime;
  try {
    rt = await openCuda();
  } catch (e) {
    if (e instanceof GpuError && e.code === 100) throw new Error(`no CUDA device (${e.message})`);
    throw e;
  }
  const i = rt.info;
  const drv = `${Math.floor(i.driverVersion / 1000)}.${(i.driverVersion % 1000) / 10}`;
  return {
    name: 'cuda',
    device: rt.device,
    runtime: rt,
    description: `${i.name} #${i.ordinal} (${i.arch}), CUDA driver ${drv}, NVRTC ${i.nvrtcVersion}`,
  };
}
