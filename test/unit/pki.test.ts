// What shared/pki/ca.ts issues (read back with @peculiar/x509) and what verifyPeerCertificate
// refuses (design §3): wrong CA, outside validity, revoked, wrong identity, wrong or missing EKU.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { x509, importKeyPair, SIGN_ALG } from '../../shared/pki/crypto.ts';
import {
  createCa,
  generateKeyPair,
  issueCertificate,
  newSerial,
  verifyPeerCertificate,
  type CaMaterial,
  type IssuedCert,
} from '../../shared/pki/index.ts';

const DAY = 86_400_000;
const SERVER_AUTH = x509.ExtendedKeyUsage.serverAuth;
const CLIENT_AUTH = x509.ExtendedKeyUsage.clientAuth;

function ext<T extends x509.Extension>(pem: string, type: new (raw: BufferSource) => T): T {
  const e = new x509.X509Certificate(pem).getExtension(type);
  assert.ok(e, `certificate has no ${type.name}`);
  return e;
}

const sanOf = (pem: string): { type: string; value: string }[] =>
  ext(pem, x509.SubjectAlternativeNameExtension).names.items.map((n) => ({ type: n.type, value: n.value }));

const ekuOf = (pem: string): string[] => [...ext(pem, x509.ExtendedKeyUsageExtension).usages].map(String);

/**
 * A certificate signed by `ca` with exactly the given SAN URI and EKU (none when `eku` is null):
 * what issueCertificate never makes, to check that verification refuses it.
 */
async function customCert(ca: CaMaterial, uri: string, eku: string[] | null): Promise<string> {
  const caKeys = await importKeyPair(ca.keyPem);
  const { keys } = await generateKeyPair();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
  ];
  if (eku) extensions.push(new x509.ExtendedKeyUsageExtension(eku));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: 'CN=custom',
    issuer: new x509.X509Certificate(ca.certPem).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions,
  });
  return cert.toString('pem');
}

let ca: CaMaterial;
let otherCa: CaMaterial;
let panel: IssuedCert;
let agent: IssuedCert;

before(async () => {
  ca = await createCa({ commonName: 'PonIO unit CA' });
  otherCa = await createCa({ commonName: 'Some other CA' });
  panel = await issueCertificate({ ca, role: { kind: 'panel' } });
  agent = await issueCertificate({ ca, role: { kind: 'host', hostId: 'web1' } });
});

describe('what the CA issues', () => {
  test('CA: self-signed ECDSA P-256, critical basicConstraints CA with pathlen 0, keyCertSign + cRLSign', async () => {
    const cert = new x509.X509Certificate(ca.certPem);
    assert.ok(await cert.isSelfSigned());
    assert.deepEqual(cert.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
    assert.equal(cert.signatureAlgorithm.name, 'ECDSA');
    assert.equal((cert.signatureAlgorithm as EcdsaParams & { hash: Algorithm }).hash.name, 'SHA-256');
    const bc = ext(ca.certPem, x509.BasicConstraintsExtension);
    assert.equal(bc.ca, true);
    assert.equal(bc.pathLength, 0);
    assert.equal(bc.critical, true);
    const ku = ext(ca.certPem, x509.KeyUsagesExtension);
    assert.equal(ku.critical, true);
    assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  });

  test('panel certificate: clientAuth + serverAuth, SAN URI urn:ponio:panel only, not a CA, P-256, signed by the CA', async () => {
    const cert = new x509.X509Certificate(panel.certPem);
    assert.ok(await cert.verify({ publicKey: new x509.X509Certificate(ca.certPem).publicKey }));
    assert.deepEqual(cert.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
    assert.deepEqual(ekuOf(panel.certPem).sort(), [CLIENT_AUTH, SERVER_AUTH].sort());
    assert.deepEqual(sanOf(panel.certPem), [{ type: 'url', value: 'urn:ponio:panel' }]);
    assert.equal(ext(panel.certPem, x509.BasicConstraintsExtension).ca, false);
    assert.ok(panel.keyPem.includes('PRIVATE KEY'), 'the key is generated when no public key is given');
  });

  test('agent certificate: serverAuth + clientAuth, SAN urn:ponio:host:<id> only (no DNS name or IP)', async () => {
    assert.deepEqual(ekuOf(agent.certPem).sort(), [SERVER_AUTH, CLIENT_AUTH].sort());
    assert.deepEqual(sanOf(agent.certPem), [{ type: 'url', value: 'urn:ponio:host:web1' }]);
    for (const role of [{ kind: 'host', hostId: 'web1' }, { kind: 'panel' }] as const)
      await assert.rejects(
        issueCertificate({ ca, role, dnsNames: ['localhost'] }),
        /carries only its urn:ponio identity/,
        'a PonIO identity never comes with a DNS name',
      );
    await assert.rejects(
      issueCertificate({ ca, role: { kind: 'host', hostId: 'web1' }, ips: ['127.0.0.1'] }),
    );
    assert.equal(ext(agent.certPem, x509.BasicConstraintsExtension).ca, false);
    assert.equal(
      agent.serial,
      new x509.X509Certificate(agent.certPem).serialNumber.toUpperCase().replace(/^0+/, ''),
    );
  });
});

describe('verifyPeerCertificate', () => {
  const asPanel = { kind: 'panel' } as const;
  const asWeb1 = { kind: 'host', hostId: 'web1' } as const;
  const refused = (r: ReturnType<typeof verifyPeerCertificate>, reason: RegExp): void => {
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, reason);
  };

  test('accepts the panel certificate as the panel and the agent certificate as its host', () => {
    const p = verifyPeerCertificate(panel.certPem, { caPem: ca.certPem, expect: asPanel });
    assert.deepEqual(p, { ok: true, serial: panel.serial, uris: ['urn:ponio:panel'] });
    const a = verifyPeerCertificate(agent.certPem, {
      caPem: ca.certPem,
      expect: asWeb1,
      purpose: 'serverAuth',
    });
    assert.equal(a.ok, true);
  });

  test('refuses a certificate from another CA', async () => {
    const foreign = await issueCertificate({ ca: otherCa, role: { kind: 'panel' } });
    refused(
      verifyPeerCertificate(foreign.certPem, { caPem: ca.certPem, expect: asPanel }),
      /not signed by the pinned CA/,
    );
    // Same subject name as the pinned CA, different key: still refused.
    const lookalike = await createCa({ commonName: 'PonIO unit CA' });
    const fake = await issueCertificate({ ca: lookalike, role: { kind: 'host', hostId: 'web1' } });
    refused(
      verifyPeerCertificate(fake.certPem, { caPem: ca.certPem, expect: asWeb1 }),
      /not signed by the pinned CA/,
    );
  });

  test('refuses an expired and a not-yet-valid certificate', async () => {
    const now = Date.now();
    const expired = await issueCertificate({
      ca,
      role: { kind: 'host', hostId: 'web1' },
      notBefore: new Date(now - 10 * DAY),
      notAfter: new Date(now - DAY),
    });
    refused(verifyPeerCertificate(expired.certPem, { caPem: ca.certPem, expect: asWeb1 }), /has expired/);
    const future = await issueCertificate({
      ca,
      role: { kind: 'host', hostId: 'web1' },
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 10 * DAY),
    });
    refused(verifyPeerCertificate(future.certPem, { caPem: ca.certPem, expect: asWeb1 }), /not yet valid/);
    // The clock comes from `now` when given.
    refused(
      verifyPeerCertificate(agent.certPem, {
        caPem: ca.certPem,
        expect: asWeb1,
        now: new Date(now + 365 * DAY),
      }),
      /has expired/,
    );
  });

  test('refuses a revoked serial (whatever its case or leading zeros)', () => {
    refused(
      verifyPeerCertificate(agent.certPem, {
        caPem: ca.certPem,
        expect: asWeb1,
        revoked: new Set([agent.serial]),
      }),
      new RegExp(`certificate ${agent.serial} is revoked`),
    );
    const other = verifyPeerCertificate(agent.certPem, {
      caPem: ca.certPem,
      expect: asWeb1,
      revoked: new Set(['ABCDEF']),
    });
    assert.equal(other.ok, true);
  });

  test('refuses the wrong identity: another host, a host as the panel, the panel as a host', () => {
    refused(
      verifyPeerCertificate(agent.certPem, { caPem: ca.certPem, expect: { kind: 'host', hostId: 'web2' } }),
      /identifies urn:ponio:host:web1, expected urn:ponio:host:web2/,
    );
    refused(
      verifyPeerCertificate(panel.certPem, { caPem: ca.certPem, expect: asWeb1, purpose: 'clientAuth' }),
      /identifies urn:ponio:panel, expected urn:ponio:host:web1/,
    );
    refused(
      verifyPeerCertificate(agent.certPem, { caPem: ca.certPem, expect: asPanel }),
      /not a panel certificate/,
    );
  });

  test('refuses a certificate whose extended key usage lacks the purpose, or that has none', async () => {
    // A "panel" certificate usable only as a server, and an agent one usable only as a client.
    const panelServerOnly = await customCert(ca, 'urn:ponio:panel', [SERVER_AUTH]);
    refused(
      verifyPeerCertificate(panelServerOnly, { caPem: ca.certPem, expect: asPanel }),
      /extended key usage does not allow clientAuth/,
    );
    const agentClientOnly = await customCert(ca, 'urn:ponio:host:web1', [CLIENT_AUTH]);
    refused(
      verifyPeerCertificate(agentClientOnly, { caPem: ca.certPem, expect: asWeb1 }),
      /extended key usage does not allow serverAuth/,
    );
    const emailOnly = await customCert(ca, 'urn:ponio:panel', [x509.ExtendedKeyUsage.emailProtection]);
    refused(
      verifyPeerCertificate(emailOnly, { caPem: ca.certPem, expect: asPanel, purpose: 'clientAuth' }),
      /does not allow clientAuth/,
    );
    for (const [uri, expect] of [
      ['urn:ponio:panel', asPanel],
      ['urn:ponio:host:web1', asWeb1],
    ] as const) {
      const none = await customCert(ca, uri, null);
      refused(
        verifyPeerCertificate(none, { caPem: ca.certPem, expect }),
        /no extended key usage \((clientAuth|serverAuth) is required\)/,
      );
    }
    // A clientAuth-only panel certificate (as issued before serverAuth was added) cannot be used
    // where serverAuth is needed (an enrolling agent checking the panel); the current one can.
    const panelClientOnly = await customCert(ca, 'urn:ponio:panel', [CLIENT_AUTH]);
    refused(
      verifyPeerCertificate(panelClientOnly, { caPem: ca.certPem, expect: asPanel, purpose: 'serverAuth' }),
      /does not allow serverAuth/,
    );
    assert.equal(
      verifyPeerCertificate(panel.certPem, { caPem: ca.certPem, expect: asPanel, purpose: 'serverAuth' }).ok,
      true,
    );
    // The same certificates pass when their purpose is the one asked for.
    assert.equal(
      verifyPeerCertificate(agentClientOnly, { caPem: ca.certPem, expect: asWeb1, purpose: 'clientAuth' }).ok,
      true,
    );
    assert.equal(
      verifyPeerCertificate(agent.certPem, { caPem: ca.certPem, expect: asWeb1, purpose: 'clientAuth' }).ok,
      true,
    );
  });

  test('refuses what does not parse', () => {
    refused(
      verifyPeerCertificate('not a certificate', { caPem: ca.certPem, expect: asPanel }),
      /could not be parsed/,
    );
  });
});
