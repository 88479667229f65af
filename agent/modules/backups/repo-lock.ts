/**
 * A readers–writer lock for the repository within this agent: backups and restores share it,
 * forget/prune/check/unlock take it alone. restic 0.14 cannot wait for its own repository lock
 * (a second run fails at once), and a trash snapshot (taken under the websites or mysql module's
 * lock) may come while the backups module runs; this lock makes them wait instead.
 */
export class RepoLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Array<{ write: boolean; go: () => void }> = [];

  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(false, fn);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(true, fn);
  }

  private async run<T>(write: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.queue.push({ write, go });
      this.pump();
    });
    try {
      return await fn();
    } finally {
      if (write) this.writer = false;
      else this.readers -= 1;
      this.pump();
    }
  }

  /** FIFO: a waiting writer holds back later readers (no starvation). */
  private pump(): void {
    while (this.queue.length > 0 && !this.writer) {
      const next = this.queue[0];
      if (!next) return;
      if (next.write) {
        if (this.readers > 0) return;
        this.writer = true;
      } else this.readers += 1;
      this.queue.shift();
      next.go();
    }
  }
}

/** A plain FIFO mutex (the backups module's own operations and its schedule, one at a time). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
