// Streams and events. weft gives each rank a compute stream and a communication stream; work
// crosses between them only through events (record on one, wait on the other), never through
// host synchronisation.
import { CU_EVENT_DISABLE_TIMING, CU_STREAM_NON_BLOCKING, type Driver } from './driver.js';

export class CudaEvent {
  constructor(
    private readonly driver: Driver,
    readonly handle: bigint,
    readonly timing: boolean,
  ) {}

  /** Capture the work enqueued on `stream` so far. */
  record(stream: Stream): this {
    const code = this.driver.fn.cuEventRecord(this.handle, stream.handle) as number;
    if (code !== 0) throw this.driver.checker.error('cuEventRecord', code);
    return this;
  }

  /** True once the captured work has finished. */
  done(): boolean {
    return this.driver.eventDone(this.handle);
  }

  /** Milliseconds from `start` to this event (both timing events, both complete). */
  since(start: CudaEvent): number {
    return this.driver.elapsedMs(start.handle, this.handle);
  }

  destroy(): void {
    this.driver.call('cuEventDestroy', this.handle);
  }
}

export class Stream {
  constructor(
    private readonly driver: Driver,
    readonly handle: bigint,
    readonly name: string,
  ) {}

  /** A non-blocking stream; `priority` as CUDA numbers it (lower runs first), default the normal one. */
  static create(driver: Driver, name: string, priority?: number): Stream {
    const handle =
      priority === undefined
        ? driver.u64('cuStreamCreate', CU_STREAM_NON_BLOCKING)
        : driver.u64('cuStreamCreateWithPriority', CU_STREAM_NON_BLOCKING, priority);
    return new Stream(driver, handle, name);
  }

  /** The highest priority this context offers (CUDA's `greatest`, a negative number on current GPUs). */
  static highestPriority(driver: Driver): number {
    const least = new Int32Array(1),
      greatest = new Int32Array(1);
    driver.call('cuCtxGetStreamPriorityRange', least, greatest);
    return greatest[0]!;
  }

  /** Later work on this stream waits for `event` (device-side; the host does not block). */
  wait(event: CudaEvent): void {
    const code = this.driver.fn.cuStreamWaitEvent(this.handle, event.handle, 0) as number;
    if (code !== 0) throw this.driver.checker.error('cuStreamWaitEvent', code);
  }

  destroy(): void {
    this.driver.call('cuStreamDestroy', this.handle);
  }
}

export function createEvent(driver: Driver, timing: boolean): CudaEvent {
  return new CudaEvent(driver, driver.u64('cuEventCreate', timing ? 0 : CU_EVENT_DISABLE_TIMING), timing);
}

/** Wait without blocking the event loop: poll `done`, running `check` (health monitors) between polls. */
export async function pollUntil(done: () => boolean, check: () => void): Promise<void> {
  let spins = 0;
  for (;;) {
    check();
    if (done()) return;
    // a short burst of immediate re-polls keeps latency low; then back off to 1 ms sleeps
    if (spins++ < 100) await new Promise<void>((r) => setImmediate(r));
    else await new Promise<void>((r) => setTimeout(r, 1));
  }
}
