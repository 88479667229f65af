/** A FIFO mutex per key: mutations of one module run one at a time. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** `onWait(key, seconds)`: how long each run waited for the lock (agent metrics). */
  constructor(private readonly onWait?: (key: string, seconds: number) => void) {}

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    const t0 = this.onWait ? performance.now() : 0;
    await prev;
    this.onWait?.(key, (performance.now() - t0) / 1000);
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
