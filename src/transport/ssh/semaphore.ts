// A counting semaphore for exec channels. OpenSSH's sshd allows MaxSessions (default 10)
// channels per connection and refuses the rest with "open failed"; capping below that
// lets callers fire any number of commands at one connection without thinking about it.
export class Semaphore {
  #free: number;
  readonly #waiters: Array<{ grant: () => void }> = [];

  constructor(permits: number) {
    this.#free = permits;
  }

  // Resolves with a release function (call it exactly once; extra calls are ignored).
  // Waiters are served first come, first served; a waiter leaves the queue, rejected with
  // the signal's reason, when any of `signals` aborts. (Several signals rather than
  // AbortSignal.any, whose listeners Node 20 keeps until the source signal aborts.)
  acquire(signals: ReadonlyArray<AbortSignal | undefined> = []): Promise<() => void> {
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    const aborted = live.find((s) => s.aborted);
    if (aborted) return Promise.reject(aborted.reason);
    if (this.#free > 0) {
      this.#free -= 1;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const detach = () => {
        for (const s of live) s.removeEventListener('abort', onAbort);
      };
      const waiter = {
        grant: () => {
          detach();
          resolve(this.#releaser());
        },
      };
      function onAbort(this: AbortSignal) {
        detach();
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        reject(this.reason);
      }
      const queue = this.#waiters;
      for (const s of live) s.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      // The permit passes straight to the next waiter, so a newcomer cannot overtake it.
      if (next) next.grant();
      else this.#free += 1;
    };
  }
}
