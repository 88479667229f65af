import { io as ioc } from 'socket.io-client';

/**
 * Tries one Socket.IO connection to an agent with the given TLS material (as the panel would, or
 * as an imposter), no reconnection: 'accepted' once the agent's hello arrives, otherwise
 * `refused: <reason>`. The socket is closed either way.
 */
export function tryAgentConnection(
  port: number,
  tls: { cert?: string; key?: string; ca: string },
  opts: { transports?: ('websocket' | 'polling')[]; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const s = ioc(`https://127.0.0.1:${port}`, {
      transports: opts.transports ?? ['websocket'],
      reconnection: false,
      timeout: opts.timeoutMs ?? 5000,
      ...tls,
      checkServerIdentity: () => undefined,
    } as Parameters<typeof ioc>[1]);
    s.once('hello', () => {
      s.close();
      resolve('accepted');
    });
    s.once('connect_error', (e) => {
      s.close();
      resolve(`refused: ${e.message}`);
    });
  });
}
