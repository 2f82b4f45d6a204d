// The built-in backends: CUDA (tried first; loads koffi and the GPU libraries only when asked
// for) and CPU (always available). Import this module, then call resolveBackend.
import { CpuDevice } from './cpu/device.js';
import { registerBackend } from './registry.js';

export { resolveBackend, registerBackend } from './registry.js';

registerBackend('cuda', {
  priority: 10,
  init: async () => (await import('./cuda/runtime/backend.js')).initCudaBackend(),
});

registerBackend('cpu', {
  priority: 0,
  init: async () => ({ name: 'cpu', device: new CpuDevice(), description: 'CPU (TypeScript kernels)' }),
});
