// Device memory of dropped tensors returns to the caching allocator when the garbage collector
// finalizes them. JS heap pressure alone rarely triggers that (a tensor object is tiny, its
// device buffer may be gigabytes), so long GPU loops ask for a collection between iterations.
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

export async function reclaimDeviceMemory(): Promise<void> {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
  // FinalizationRegistry callbacks run in a later task
  await new Promise((resolve) => setImmediate(resolve));
}
