export { DryComm } from './comm.js';
export { DryDevice, type DryTensor } from './device.js';
export { DryKernel, type DryKernelOptions } from './kernel.js';
export { RunTrace, type TraceEvent, type TraceOp, TraceComm, tensorBytes } from './trace.js';
