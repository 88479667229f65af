import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  findUser,
  formatPasswd,
  isEnabled,
  lockHash,
  parsePasswd,
  unlockHash,
  updateUser,
  users,
  type PasswdUser,
} from '../../agent/modules/ftp/passwd.ts';
import { sandboxConfig, sandboxPaths, systemSnippet } from '../../agent/modules/ftp/proftpd.ts';
import { parseFtpSettings } from '../../agent/modules/ftp/settings.ts';
import { isStrictlyInside } from '../../agent/modules/ftp/home.ts';
import { sandboxLayout } from '../../agent/os/layout.ts';

const HASH = `$6$abcdefgh$${'A'.repeat(86)}`;
const alice: PasswdUser = {
  username: 'alice',
  hash: HASH,
  uid: 33,
  gid: 33,
  gecos: 'ponio',
  home: '/var/www/a.com/public_html',
  shell: '/usr/sbin/nologin',
};

test('passwd file: round trip keeps foreign lines verbatim and in place', () => {
  const text =
    [
      '# admin comment',
      `legacy:${HASH}:1001:1001:Legacy user:/srv/ftp/legacy:/bin/false`,
      'garbage line without fields',
      '',
      `alice:${HASH}:33:33:ponio:/var/www/a.com/public_html:/usr/sbin/nologin`,
    ].join('\n') + '\n';
  const lines = parsePasswd(text);
  assert.equal(formatPasswd(lines), text);
  assert.deepEqual(
    users(lines).map((u) => u.username),
    ['legacy', 'alice'],
  );
  assert.deepEqual(findUser(lines, 'alice'), alice);
  assert.equal(findUser(lines, 'garbage line without fields'), undefined);
});

test('passwd file: update, delete and lock/unlock work on data', () => {
  const lines = parsePasswd(formatPasswd([{ kind: 'user', user: alice }]));
  const locked = updateUser(lines, 'alice', (u) => ({ ...u, hash: lockHash(u.hash) }));
  const u = findUser(locked, 'alice');
  assert.ok(u && !isEnabled(u));
  assert.equal(lockHash(lockHash(HASH)), `!${HASH}`, 'locking twice is one lock');
  assert.equal(unlockHash(`!!${HASH}`), HASH);
  assert.equal(formatPasswd(updateUser(lines, 'alice', () => null)), '');
  assert.match(formatPasswd(locked), /^alice:!\$6\$/);
});

test('passwd file: a field with a separator is never written', () => {
  for (const bad of [
    { username: 'a:b' },
    { username: 'a\nroot' },
    { home: '/x:y' },
    { home: '/x\n/y' },
    { gecos: 'x:0:0' },
    { uid: -1 },
    { gid: 1.5 },
  ]) {
    assert.throws(() => formatPasswd([{ kind: 'user', user: { ...alice, ...bad } }]), JSON.stringify(bad));
  }
});

test('system snippet enables mod_auth_file with the jail and no shell check', () => {
  const s = systemSnippet('/etc/proftpd/ftpd.passwd');
  assert.match(s, /^\s*AuthUserFile \/etc\/proftpd\/ftpd\.passwd$/m);
  assert.match(s, /^\s*AuthOrder mod_auth_file\.c mod_auth_unix\.c$/m);
  assert.match(s, /^DefaultRoot ~$/m);
  assert.match(s, /^RequireValidShell off$/m);
});

test('sandbox config: loopback only, own files, passive range', () => {
  const layout = sandboxLayout('/tmp/sbx');
  const paths = sandboxPaths(layout, {});
  const conf = sandboxConfig({
    paths,
    layout,
    port: 2121,
    passivePorts: [40000, 40015],
    user: 'nobody',
    group: 'nogroup',
  });
  assert.match(conf, /^Port 2121$/m);
  assert.match(conf, /^DefaultAddress 127\.0\.0\.1$/m);
  assert.match(conf, /^SocketBindTight on$/m);
  assert.match(conf, /^PassivePorts 40000 40015$/m);
  assert.match(conf, /^AuthUserFile "\/tmp\/sbx\/etc\/proftpd\/ftpd\.passwd"$/m);
  assert.match(conf, /^PidFile "\/tmp\/sbx\/run\/proftpd\.pid"$/m);
  assert.match(conf, /^ScoreboardFile "\/tmp\/sbx\/run\/proftpd\.scoreboard"$/m);
  assert.ok(!conf.includes('/var/run/proftpd'), 'nothing shared with the system instance');
  assert.equal(paths.ftpRoot, path.join('/tmp/sbx', 'srv/ftp'));
});

test('settings are validated', () => {
  assert.deepEqual(parseFtpSettings(undefined), {});
  assert.deepEqual(parseFtpSettings({ ftpRoot: '/srv/files', passivePorts: [50000, 50010] }), {
    ftpRoot: '/srv/files',
    passivePorts: [50000, 50010],
  });
  for (const bad of [
    { ftpRoot: 'relative' },
    { ftpRoot: '/' },
    { ftpRoot: '/a/../b' },
    { passivePorts: [5, 1] },
    { x: 1 },
  ])
    assert.throws(() => parseFtpSettings(bad), /invalid modules\.ftp setting/);
});

test('inside test uses a trailing separator', () => {
  assert.ok(isStrictlyInside('/var/www/a.com', '/var/www/a.com/public_html'));
  assert.ok(!isStrictlyInside('/var/www/a.com', '/var/www/a.com.evil'));
  assert.ok(!isStrictlyInside('/var/www/a.com', '/var/www/a.com'));
  assert.ok(!isStrictlyInside('/srv/ftp', '/srv/ftp.evil/x'));
});
