// The resource-fault mapping (agent/os/resource-fault.ts): which errors become `unavailable`, and
// the path and condition they name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceFault, withPath } from '../../agent/os/resource-fault.ts';

const errno = (code: string, p?: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: failed`), { code, ...(p !== undefined ? { path: p } : {}) });

test('ENOSPC, EDQUOT and EROFS become unavailable with the path and the condition', () => {
  for (const [code, words] of [
    ['ENOSPC', 'no space is left on the device'],
    ['EDQUOT', 'the disk quota is exceeded'],
    ['EROFS', 'the file system is read-only'],
  ] as const) {
    const f = resourceFault(errno(code, '/var/www/a.test/public_html'));
    assert.ok(f);
    assert.equal(f.code, 'unavailable');
    assert.equal(
      f.message,
      `The change could not be made: ${words} writing /var/www/a.test/public_html (${code}). Nothing was changed; free space or make the file system writable, then retry.`,
    );
    assert.deepEqual(f.details, { condition: code, path: '/var/www/a.test/public_html' });
  }
});

test('other errors are not resource faults; a cause chain is followed', () => {
  assert.equal(resourceFault(errno('EACCES', '/x')), null);
  assert.equal(resourceFault(new Error('boom')), null);
  assert.equal(resourceFault('ENOSPC'), null);
  const wrapped = new Error('outer', { cause: errno('ENOSPC', '/y') });
  assert.deepEqual(resourceFault(wrapped)?.details, { condition: 'ENOSPC', path: '/y' });
});

test('withPath names the file a write error does not name (or replaces a temp name)', () => {
  const e = errno('ENOSPC');
  assert.equal(withPath(e, '/etc/x.conf'), e);
  assert.equal(e.path, '/etc/x.conf');
  assert.equal(
    (withPath(errno('ENOSPC', '/etc/.x.conf.ab12.tmp'), '/etc/x.conf', true) as NodeJS.ErrnoException).path,
    '/etc/x.conf',
  );
  assert.equal((withPath(errno('EACCES'), '/etc/x.conf') as NodeJS.ErrnoException).path, undefined);
});
