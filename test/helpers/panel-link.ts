import { pino } from 'pino';
import { ConnectionManager, type PanelTls } from '../../server/hosts/connection-manager.ts';
import type { TestPki } from './pki.ts';

export const quietLogger = pino({ level: process.env.PONIO_TEST_LOG ?? 'silent' });

/** A connection manager with the test PKI's panel certificate and fast retries. */
export function testManager(pki: TestPki, tls?: Partial<PanelTls>): ConnectionManager {
  const material: PanelTls = {
    certPem: pki.panel.certPem,
    keyPem: pki.panel.keyPem,
    caPem: pki.ca.certPem,
    ...tls,
  };
  return new ConnectionManager({
    tls: () => material,
    logger: quietLogger,
    backoff: { minMs: 100, maxMs: 500 },
    connectTimeoutMs: 3000,
  });
}
