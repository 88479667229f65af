import { test } from 'node:test';
import assert from 'node:assert/strict';
import { x509 } from '../../shared/pki/crypto.ts';
import { HostCrl } from '../../server/hosts/host-crl.ts';
import { createCa } from '../../shared/pki/index.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const listed = (pem: string): string[] =>
  new x509.X509Crl(pem).entries.map((e) => e.serialNumber.toUpperCase()).sort();

test('the host CRL is re-signed whenever the revoked set changes, however often it was checked before', async () => {
  const ca = await createCa();
  const revoked = new Set<string>();
  const crl = new HostCrl({ ca: () => ca, revoked: () => revoked, logger: quietLogger });
  assert.equal(await crl.refresh(), true, 'the first refresh signs an (empty) CRL');
  assert.deepEqual(listed(crl.current()), []);
  // Checks with nothing new leave it as it is…
  assert.equal(await crl.refresh(), false);
  assert.equal(await crl.refresh(), false);
  // …and do not stop the next change from being signed.
  revoked.add('7DECC1F795EF2043D6297BC8DBF24E5C');
  assert.equal(await crl.refresh(), true);
  assert.deepEqual(listed(crl.current()), ['7DECC1F795EF2043D6297BC8DBF24E5C']);
  // Two refreshes at once: one signature covers the change both saw.
  revoked.add('1A2B3C4D5E6F');
  const [a, b] = await Promise.all([crl.refresh(), crl.refresh()]);
  assert.equal(a && b, true);
  assert.deepEqual(listed(crl.current()), ['1A2B3C4D5E6F', '7DECC1F795EF2043D6297BC8DBF24E5C']);
  assert.equal(await crl.refresh(), false);
});
