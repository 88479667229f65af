import type { Ack, LinkSocket } from '../../shared/link/socket.ts';

/** One end of an in-memory socket pair, plus test controls. */
export interface MemoryEnd extends LinkSocket {
  /** Messages this end sent, in order (event names). */
  readonly sent: string[];
  /** Fires this end's keep-alive listeners. */
  alive(): void;
}

/**
 * Two connected {@link LinkSocket}s in memory. Delivery is asynchronous (a macrotask), like a
 * network; closing either end closes both. For unit tests of the link layer.
 */
export function memorySocketPair(): [MemoryEnd, MemoryEnd] {
  type Listener = (event: string, data: unknown, ack: Ack | null) => void;
  interface State {
    message: Listener[];
    close: ((reason: string) => void)[];
    alive: (() => void)[];
    sent: string[];
  }
  const states: [State, State] = [
    { message: [], close: [], alive: [], sent: [] },
    { message: [], close: [], alive: [], sent: [] },
  ];
  let open = true;
  const shut = (reasons: [string, string]): void => {
    if (!open) return;
    open = false;
    setImmediate(() => {
      for (const i of [0, 1] as const) for (const l of states[i].close) l(reasons[i]);
    });
  };
  const end = (me: 0 | 1): MemoryEnd => {
    const peer = states[me === 0 ? 1 : 0];
    const mine = states[me];
    const deliver = (event: string, data: unknown, ack: Ack | null): void => {
      mine.sent.push(event);
      // structuredClone: what crosses is data, as over a wire.
      const copy: unknown = data === undefined ? undefined : structuredClone(data);
      setImmediate(() => {
        if (open) for (const l of peer.message) l(event, copy, ack);
      });
    };
    return {
      get connected() {
        return open;
      },
      sent: mine.sent,
      send(event, data) {
        if (open) deliver(event, data, null);
      },
      request(event, data, timeoutMs) {
        return new Promise((resolve, reject) => {
          if (!open) {
            reject(new Error('closed'));
            return;
          }
          let done = false;
          const timer = setTimeout(() => {
            done = true;
            reject(new Error('timeout'));
          }, timeoutMs);
          mine.close.push(() => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            reject(new Error('closed'));
          });
          deliver(event, data, (reply) => {
            if (done || !open) return;
            done = true;
            clearTimeout(timer);
            const copy: unknown = structuredClone(reply);
            setImmediate(() => resolve(copy));
          });
        });
      },
      onMessage(l) {
        mine.message.push(l);
      },
      onClose(l) {
        mine.close.push(l);
      },
      onAlive(l) {
        mine.alive.push(l);
      },
      alive() {
        for (const l of mine.alive) l();
      },
      close() {
        shut(
          me === 0
            ? ['io client disconnect', 'transport close']
            : ['transport close', 'io client disconnect'],
        );
      },
    };
  };
  return [end(0), end(1)];
}
