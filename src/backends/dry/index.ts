export { DryComm } from './comm.js';
export { DryDevice } from './device.js';
export { DryKernel } from './kernel.js';
export { RunTrace, type TraceEvent, TraceComm } from './trace.js';
