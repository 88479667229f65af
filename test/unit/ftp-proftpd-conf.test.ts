import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDirectives, runtimeUserOf, type ConfReader } from '../../agent/modules/ftp/proftpd-conf.ts';
import { proftpdRuntimeUser } from '../../agent/modules/ftp/proftpd.ts';
import { findVhost, serverNames } from '../../agent/modules/ftp/websites.ts';
import { tempDir } from '../helpers/tmp.ts';

/** An in-memory tree of config files: a key ending in `/` is a directory listing. */
function memory(files: Record<string, string>): ConfReader {
  return {
    read: (f) => Promise.resolve(files[f] ?? null),
    list: (d) => {
      const prefix = d.endsWith('/') ? d : `${d}/`;
      if (!Object.keys(files).some((k) => k.startsWith(prefix))) return Promise.resolve(null);
      const names = Object.keys(files)
        .filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
        .map((k) => k.slice(prefix.length))
        .sort();
      return Promise.resolve(names);
    },
  };
}

// The shape of Debian's /etc/proftpd/proftpd.conf: User after conditional blocks, an Anonymous
// example with its own User (commented out there; live here to prove it is not taken).
const DEBIAN_LIKE = [
  '# /etc/proftpd/proftpd.conf -- This is a basic ProFTPD configuration file.',
  'Include /etc/proftpd/modules.conf',
  'UseIPv6 on',
  '<IfModule mod_ident.c>',
  '  IdentLookups off',
  '</IfModule>',
  'ServerName "Debian"',
  '# User nobody',
  '<Anonymous ~ftp>',
  '   User ftp',
  '   Group nogroup',
  '</Anonymous>',
  '<VirtualHost 10.0.0.1>',
  '  User www-data',
  '</VirtualHost>',
  'User proftpd',
  'Group nogroup',
  'Include /etc/proftpd/conf.d/',
  '',
].join('\n');

test('the runtime user is the first User of the server context, not one of <Anonymous> or <VirtualHost>', async () => {
  const r = memory({
    '/etc/proftpd/proftpd.conf': DEBIAN_LIKE,
    '/etc/proftpd/modules.conf': 'LoadModule mod_ctrls_admin.c\n',
    '/etc/proftpd/conf.d/zz.conf': 'User late\n',
  });
  assert.equal(await runtimeUserOf('/etc/proftpd/proftpd.conf', r), 'proftpd');
});

test('User inside <IfModule> or <Global> counts, quotes are removed, continuation lines are joined', async () => {
  const one = (text: string) => runtimeUserOf('/c/p.conf', memory({ '/c/p.conf': text }));
  assert.equal(await one('<IfModule mod_auth.c>\n  User "ftpd-run"\n</IfModule>\n'), 'ftpd-run');
  assert.equal(await one('<Global>\n  User gl\n</Global>\nUser later\n'), 'gl');
  assert.equal(await one('ServerName x\nUser \\\n  split\n'), 'split');
  assert.equal(await one('  user   lower  \n'), 'lower', 'directive names are case-insensitive');
  assert.equal(await one('# User commented\nGroup nogroup\n'), null);
  assert.equal(await one('<Anonymous ~ftp>\nUser ftp\n</Anonymous>\n'), null);
});

test('Includes are followed in place: a directory (sorted), a glob, a relative path; first User wins', async () => {
  const r = memory({
    '/e/main.conf': 'Include /e/conf.d/\nUser main\n',
    '/e/conf.d/20-b.conf': 'User from-b\n',
    '/e/conf.d/10-a.conf': 'ServerName a\n',
  });
  assert.equal(await runtimeUserOf('/e/main.conf', r), 'from-b', 'conf.d is read where it is included');

  const glob = memory({
    '/g/main.conf': 'Include /g/d/*.conf\n',
    '/g/d/a.txt': 'User not-a-conf\n',
    '/g/d/b.conf': 'User globbed\n',
  });
  assert.equal(await runtimeUserOf('/g/main.conf', glob), 'globbed');

  const rel = memory({ '/r/main.conf': 'Include sub/users.conf\n', '/r/sub/users.conf': 'User relative\n' });
  assert.equal(await runtimeUserOf('/r/main.conf', rel), 'relative');

  const inVhost = memory({
    '/v/main.conf': '<VirtualHost 1.2.3.4>\nInclude /v/x.conf\n</VirtualHost>\n',
    '/v/x.conf': 'User vhost-only\n',
  });
  assert.equal(
    await runtimeUserOf('/v/main.conf', inVhost),
    null,
    'an Include inside a vhost is its context',
  );

  const loop = memory({ '/l/main.conf': 'Include /l/main.conf\n' });
  assert.equal(await runtimeUserOf('/l/main.conf', loop), null, 'an Include loop ends');
  assert.equal(await runtimeUserOf('/missing.conf', memory({})), null);
});

test('parseDirectives keeps block contexts and skips conditions', () => {
  const d = parseDirectives(
    '<Global>\n<IfModule x>\nA 1\n</IfModule>\n</Global>\n<Anonymous ~>\nB 2\n</Anonymous>\nC\n',
  );
  assert.deepEqual(d, [
    { name: 'a', args: '1', blocks: ['global'] },
    { name: 'b', args: '2', blocks: ['anonymous'] },
    { name: 'c', args: '', blocks: [] },
  ]);
});

test('proftpdRuntimeUser resolves the User from a passwd file and falls back with a reason', async () => {
  const dir = tempDir('ponio-ftpconf-');
  const conf = path.join(dir, 'proftpd.conf');
  const passwd = path.join(dir, 'passwd');
  writeFileSync(
    passwd,
    'root:x:0:0::/root:/bin/bash\nproftpd:x:104:65534::/run/proftpd:/usr/sbin/nologin\nftprun:x:990:991::/:/usr/sbin/nologin\n',
  );

  writeFileSync(conf, 'ServerName x\nUser ftprun\n');
  assert.deepEqual(await proftpdRuntimeUser(conf, passwd), {
    account: { name: 'ftprun', uid: 990, gid: 991 },
    fallback: null,
  });

  writeFileSync(conf, 'User ghost\n');
  const ghost = await proftpdRuntimeUser(conf, passwd);
  assert.deepEqual(ghost.account, { name: 'proftpd', uid: 104, gid: 65534 });
  assert.match(ghost.fallback ?? '', /User ghost .* is not in .*passwd.*owned by proftpd instead/);

  writeFileSync(conf, 'ServerName no-user\n');
  const none = await proftpdRuntimeUser(conf, passwd);
  assert.equal(none.account.name, 'proftpd');
  assert.match(none.fallback ?? '', /no User directive found/);

  writeFileSync(passwd, 'root:x:0:0::/root:/bin/bash\n');
  const bare = await proftpdRuntimeUser(conf, passwd);
  assert.deepEqual(bare.account, { name: 'root', uid: 0, gid: 0 }, 'no proftpd account: root, as before');
  assert.match(bare.fallback ?? '', /owned by root instead/);
});

test('serverNames reads the ServerName lines of a vhost (case, quotes, scheme, port, comments)', () => {
  const text = [
    '<VirtualHost *:80>',
    '  # ServerName commented.test',
    '  servername "Example.COM:80"',
    '  ServerAlias www.example.com',
    '</VirtualHost>',
    '<VirtualHost *:443>',
    '  ServerName https://secure.example.com:443',
    '</VirtualHost>',
  ].join('\n');
  assert.deepEqual(serverNames(text), ['example.com', 'secure.example.com']);
});

test('findVhost: <domain>.conf or a ServerName in sites-available; hidden files, other names and no dir do not count', async () => {
  const dir = tempDir('ponio-ftpvhost-');
  const avail = path.join(dir, 'sites-available');
  assert.equal(await findVhost(avail, 'a.test'), null, 'no sites-available at all');
  mkdirSync(avail);
  writeFileSync(path.join(avail, 'a.test.conf'), '# anything\n');
  writeFileSync(path.join(avail, 'legacy.conf'), '<VirtualHost *:80>\n  ServerName b.test\n</VirtualHost>\n');
  writeFileSync(path.join(avail, '.c.test.conf'), 'ServerName c.test\n');
  writeFileSync(path.join(avail, 'd.test.conf.bak'), 'ServerName d.test\n');
  mkdirSync(path.join(avail, 'e.test.conf'));
  assert.equal(await findVhost(avail, 'a.test'), path.join(avail, 'a.test.conf'));
  assert.equal(
    await findVhost(avail, 'b.test'),
    path.join(avail, 'legacy.conf'),
    'an admin vhost by ServerName',
  );
  for (const d of ['c.test', 'd.test', 'e.test', 'test', 'a.tes'])
    assert.equal(await findVhost(avail, d), null, d);
});
