import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VhostCache } from '../../agent/modules/websites/vhost-cache.ts';
import { tempDir } from '../helpers/tmp.ts';

test('vhost cache: unchanged files are not re-read; replaced, edited and removed ones are seen', async () => {
  const dir = tempDir('ponio-vcache-');
  const a = path.join(dir, 'a.conf');
  const b = path.join(dir, 'b.conf');
  writeFileSync(a, 'one');
  writeFileSync(b, 'two');
  const parsed: string[] = [];
  const cache = new VhostCache((text, file) => {
    parsed.push(path.basename(file));
    return text.toUpperCase();
  });
  assert.deepEqual(await cache.read([a, b]), ['ONE', 'TWO']);
  assert.deepEqual(await cache.read([a, b]), ['ONE', 'TWO']);
  assert.deepEqual(parsed, ['a.conf', 'b.conf'], 'the second read parsed nothing');

  // Replaced by rename (how PonIO writes): a new inode.
  writeFileSync(`${a}.tmp`, 'uno');
  renameSync(`${a}.tmp`, a);
  // Edited in place (how an admin's editor may write).
  appendFileSync(b, '!');
  assert.deepEqual(await cache.read([a, b]), ['UNO', 'TWO!']);
  assert.deepEqual(parsed.slice(2), ['a.conf', 'b.conf']);

  rmSync(a);
  assert.deepEqual(await cache.read([a, b, path.join(dir, 'missing.conf')]), [null, 'TWO!', null]);
  writeFileSync(a, 'back');
  assert.deepEqual(await cache.read([a]), ['BACK'], 'a file that came back is read again');
});
