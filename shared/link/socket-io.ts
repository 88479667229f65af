import type { Socket as ClientSocket } from 'socket.io-client';
import type { Socket as ServerSocket } from 'socket.io';
import type { Ack, LinkSocket } from './socket.ts';

/** What both Socket.IO socket kinds offer and the link needs. */
interface IoSocket {
  readonly connected: boolean;
  emit(event: string, ...args: unknown[]): unknown;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
  onAny(listener: (event: string, ...args: unknown[]) => void): unknown;
  once(event: 'disconnect', listener: (reason: string) => void): unknown;
  disconnect(close?: boolean): unknown;
}

function adapt(socket: IoSocket, onAlive: (listener: () => void) => void): LinkSocket {
  return {
    get connected() {
      return socket.connected;
    },
    send(event, data) {
      socket.emit(event, data);
    },
    request(event, data, timeoutMs) {
      return socket.timeout(timeoutMs).emitWithAck(event, data);
    },
    onMessage(listener) {
      socket.onAny((event: string, ...args: unknown[]) => {
        const last = args[args.length - 1];
        const ack = typeof last === 'function' ? (last as Ack) : null;
        const data = ack ? (args.length > 1 ? args[0] : undefined) : args[0];
        listener(event, data, ack);
      });
    },
    onClose(listener) {
      socket.once('disconnect', (reason: string) => listener(reason));
    },
    onAlive,
    close() {
      socket.disconnect(true);
    },
  };
}

/** A link over a Socket.IO client socket (the side that dialed). */
export function clientLinkSocket(socket: ClientSocket): LinkSocket {
  return adapt(socket, (listener) => {
    socket.io.on('ping', listener);
  });
}

/** A link over a socket a Socket.IO server accepted (the side that listened). */
export function serverLinkSocket(socket: ServerSocket): LinkSocket {
  return adapt(socket, (listener) => {
    socket.conn.on('heartbeat', listener);
  });
}
