import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  chmodSync,
  readdirSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { DatadirTemplate } from '../../agent/modules/mysql/template.ts';

const quiet = pino({ level: 'silent' });

test('the datadir template is saved owner-only, copied back, and refused when others can write it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-tpl-'));
  try {
    const fakeBinary = path.join(dir, 'mariadbd');
    writeFileSync(fakeBinary, 'binary');
    const tpl = new DatadirTemplate(fakeBinary, quiet, { XDG_CACHE_HOME: path.join(dir, 'cache') });

    assert.equal(await tpl.copyTo(path.join(dir, 'none')), false, 'no template yet');
    assert.equal(existsSync(path.join(dir, 'none')), false);

    const fresh = path.join(dir, 'fresh');
    mkdirSync(path.join(fresh, 'mysql'), { recursive: true });
    writeFileSync(path.join(fresh, 'mysql_upgrade_info'), '10.11');
    writeFileSync(path.join(fresh, 'mysql', 'user.MAD'), 'tables');
    await tpl.saveFrom(fresh);
    await tpl.saveFrom(fresh); // a second save (a concurrent agent) leaves one template, no temp dirs
    const cache = path.join(dir, 'cache/ponio');
    const entries = readdirSync(cache);
    assert.equal(entries.length, 1, entries.join(', '));

    const copy = path.join(dir, 'copy');
    assert.equal(await tpl.copyTo(copy), true);
    assert.equal(readFileSync(path.join(copy, 'mysql', 'user.MAD'), 'utf8'), 'tables');

    // A template others could have written (planted tables, a known root password…) is not used.
    chmodSync(path.join(cache, entries[0] ?? ''), 0o777);
    assert.equal(await tpl.copyTo(path.join(dir, 'copy2')), false);
    assert.equal(existsSync(path.join(dir, 'copy2')), false);

    // A new mariadbd binary (upgrade) gets its own template.
    writeFileSync(fakeBinary, 'a newer binary');
    assert.equal(await tpl.copyTo(path.join(dir, 'copy3')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
