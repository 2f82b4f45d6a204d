// Counts the worker threads that code under test creates and how many of them have exited: tests
// say "refused before any rank started" or "a failure ends every rank" by counting threads, not by
// timing them. (A Worker whose construction throws, e.g. on arguments that cannot be cloned, is
// counted as created but never exits: it never had a thread.)
import { createHook } from 'node:async_hooks';

export interface WorkerTracker {
  /** worker threads created since the tracker was made */
  readonly created: number;
  /** resolves once `n` of them have exited; the test's own timeout guards a hang */
  exited(n: number): Promise<void>;
  stop(): void;
}

export function trackWorkers(): WorkerTracker {
  const ids = new Set<number>();
  let created = 0,
    done = 0;
  let waiting: { n: number; resolve: () => void }[] = [];
  const settle = (): void => {
    for (const w of waiting) if (done >= w.n) w.resolve();
    waiting = waiting.filter((w) => done < w.n);
  };
  const hook = createHook({
    init(id, type) {
      if (type !== 'WORKER') return;
      ids.add(id);
      created++;
    },
    destroy(id) {
      if (!ids.delete(id)) return;
      done++;
      settle();
    },
  }).enable();
  return {
    get created() {
      return created;
    },
    // a terminated worker's handle may close after the event loop has run dry, so a timer keeps
    // the loop alive until the count is reached
    exited: (n) =>
      new Promise<void>((resolve) => {
        const alive = setInterval(() => {}, 1000);
        waiting.push({
          n,
          resolve: () => {
            clearInterval(alive);
            resolve();
          },
        });
        settle();
      }),
    stop: () => void hook.disable(),
  };
}
