import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './tmp.ts';
import { createCa, issueCertificate, type CaMaterial, type IssuedCert } from '../../shared/pki/index.ts';

export interface TestPki {
  dir: string;
  ca: CaMaterial;
  panel: IssuedCert;
  files: { caCert: string; panelCert: string; panelKey: string };
  /** Issues (and writes) an agent certificate for a host id. */
  agent(hostId: string, opts?: { notBefore?: Date; notAfter?: Date }): Promise<AgentFiles>;
}

export interface AgentFiles extends IssuedCert {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** A throwaway CA with a panel certificate, written to a temp dir (removed when the test file ends). */
export async function makeTestPki(): Promise<TestPki> {
  const dir = tempDir('ponio-pki-');
  const ca = await createCa({ commonName: 'PonIO test CA' });
  const panel = await issueCertificate({ ca, role: { kind: 'panel' } });
  const files = {
    caCert: path.join(dir, 'ca.crt'),
    panelCert: path.join(dir, 'panel.crt'),
    panelKey: path.join(dir, 'panel.key'),
  };
  writeFileSync(files.caCert, ca.certPem);
  writeFileSync(files.panelCert, panel.certPem);
  writeFileSync(files.panelKey, panel.keyPem, { mode: 0o600 });
  let n = 0;
  return {
    dir,
    ca,
    panel,
    files,
    async agent(hostId, opts = {}) {
      const issued = await issueCertificate({
        ca,
        role: { kind: 'host', hostId },
        ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
        ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
      });
      n++;
      const certFile = path.join(dir, `agent-${hostId}-${n}.crt`);
      const keyFile = path.join(dir, `agent-${hostId}-${n}.key`);
      writeFileSync(certFile, issued.certPem);
      writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
      return { ...issued, certFile, keyFile, caFile: files.caCert };
    },
  };
}
