// The system-mode proftpd adapter against Debian's real proftpd configuration, relocated to a temp
// dir (the host's /etc is never touched): the snippet and user file it installs, `proftpd -t` on
// the result, idempotence, and rollback when the configuration cannot be used.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { exec } from '../../agent/os/exec.ts';
import { sandboxLayout } from '../../agent/os/layout.ts';
import { createFtpModule } from '../../agent/modules/ftp/index.ts';
import { createSystemAdapter, systemSnippet, type SystemPaths } from '../../agent/modules/ftp/proftpd.ts';
import { systemAccounts } from '../../agent/modules/ftp/accounts.ts';
import type { CallContext } from '../../agent/modules/types.ts';
import type { RpcError } from '../../shared/protocol/errors.ts';
import { quietLogger } from '../helpers/panel-link.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';

const DEBIAN_CONF = '/etc/proftpd/proftpd.conf';
let dir: string;
let paths: SystemPaths;

const call: CallContext = {
  peer: { address: '127.0.0.1', port: 1, localPort: 2 },
  requestId: undefined,
  signal: new AbortController().signal,
  logger: quietLogger,
  emit: () => undefined,
  intent: () => Promise.resolve(),
  progress: () => undefined,
};

const adapter = (logger = quietLogger) =>
  createSystemAdapter({ exec, logger, layout: sandboxLayout(dir), settings: {}, paths });

/** The `User` of Debian's real config, read here independently of the adapter's parser. */
const debianUser = (): string => {
  const m = /^User\s+(\S+)\s*$/m.exec(readFileSync(DEBIAN_CONF, 'utf8'));
  assert.ok(m?.[1], `${DEBIAN_CONF} has a top-level User directive`);
  return m[1];
};

before(async () => {
  requireRoot('the FTP system-mode test');
  requireProgram('proftpd', 'proftpd-core');
  assert.ok(existsSync(DEBIAN_CONF), `${DEBIAN_CONF} missing: apt-get install -y proftpd-core`);
  dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-ftpsys-'));
  await fsp.chmod(dir, 0o755);
  const confD = path.join(dir, 'conf.d');
  await fsp.mkdir(confD);
  paths = {
    conf: path.join(dir, 'proftpd.conf'),
    confD,
    snippet: path.join(confD, 'ponio.conf'),
    userFile: path.join(dir, 'ftpd.passwd'),
    pidFile: path.join(dir, 'proftpd.pid'),
    systemdMarker: path.join(dir, 'no-systemd'),
  };
  // Debian's own main config, with its conf.d include pointed at the temp dir.
  const debian = readFileSync(DEBIAN_CONF, 'utf8');
  assert.match(debian, /^Include \/etc\/proftpd\/conf\.d\/$/m, 'Debian config includes conf.d');
  await fsp.writeFile(
    paths.conf,
    debian.replace(/^Include \/etc\/proftpd\/conf\.d\/$/m, `Include ${confD}/`),
  );
});

after(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

describe('system-mode proftpd adapter', () => {
  test('installs the snippet and a 0600 user file owned by proftpd; the real config test passes', async () => {
    await adapter().start();
    assert.equal(readFileSync(paths.snippet, 'utf8'), systemSnippet(paths.userFile));
    const st = statSync(paths.userFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(debianUser(), 'proftpd', "Debian's config runs the daemon as proftpd");
    const runtime = (await systemAccounts()).get(debianUser());
    assert.ok(runtime, 'the proftpd account exists (apt-get install proftpd-core)');
    assert.notEqual(runtime.uid, 0);
    assert.deepEqual([st.uid, st.gid], [runtime.uid, runtime.gid], "owned by the config's User account");
    await adapter().check();

    // Idempotent: a second start changes nothing.
    const before = statSync(paths.snippet).mtimeMs;
    await adapter().start();
    assert.equal(statSync(paths.snippet).mtimeMs, before);

    // A user file made world-readable by hand is put back to 0600.
    await fsp.chmod(paths.userFile, 0o644);
    await adapter().start();
    assert.equal(statSync(paths.userFile).mode & 0o777, 0o600);
  });

  test('the user file follows the User directive of the config in use; an unknown User falls back, logged', async () => {
    const good = readFileSync(paths.conf, 'utf8');
    const nobody = (await systemAccounts()).get('nobody');
    assert.ok(nobody);
    try {
      await fsp.writeFile(paths.conf, good.replace(/^User\s+\S+\s*$/m, 'User nobody'));
      await adapter().start();
      assert.equal(statSync(paths.userFile).uid, nobody.uid, 'chowned to the configured User');
      await adapter().check();

      let log = '';
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          log += c.toString();
          cb();
        },
      });
      await fsp.writeFile(paths.conf, good.replace(/^User\s+\S+\s*$/m, 'User no-such-account-x'));
      await adapter(pino({ level: 'warn' }, sink)).start();
      const proftpd = (await systemAccounts()).get('proftpd');
      assert.equal(statSync(paths.userFile).uid, proftpd?.uid, 'falls back to the proftpd account');
      assert.match(log, /User no-such-account-x .* is not in \/etc\/passwd.*owned by proftpd instead/);
    } finally {
      await fsp.writeFile(paths.conf, good);
      await adapter().start();
    }
    assert.equal(statSync(paths.userFile).uid, (await systemAccounts()).get(debianUser())?.uid);
  });

  test('the module writes users that the system config accepts', async () => {
    const siteDir = path.join(dir, 'var/www/sys.test');
    const docroot = path.join(siteDir, 'public_html');
    await fsp.mkdir(docroot, { recursive: true });
    const www = (await systemAccounts()).get('www-data');
    assert.ok(www, 'www-data account (apt-get install apache2)');
    await fsp.chown(siteDir, www.uid, www.gid);
    await fsp.chown(docroot, www.uid, www.gid);
    const mod = createFtpModule(
      {
        layout: { ...sandboxLayout(dir), mode: 'system' },
        exec,
        logger: quietLogger,
        broadcast: () => undefined,
        agentPort: 0,
      },
      { adapter: adapter() },
    );
    const req = { username: 'sysuser', password: 'system mode pw', home: docroot };
    // A site tree without a vhost in the layout's sites-available is not a website.
    const users = readFileSync(paths.userFile);
    await assert.rejects(mod.handlers['create ftp user'](req, call), (e: RpcError) => {
      assert.equal(e.code, 'invalid-argument');
      assert.match(e.message, /sys\.test is not the tree of a website on this host/);
      return true;
    });
    assert.deepEqual(readFileSync(paths.userFile), users);
    const sitesAvailable = path.join(dir, 'etc/apache2/sites-available');
    await fsp.mkdir(sitesAvailable, { recursive: true });
    await fsp.writeFile(
      path.join(sitesAvailable, 'sys.test.conf'),
      `<VirtualHost *:80>\n  ServerName sys.test\n  DocumentRoot ${docroot}\n</VirtualHost>\n`,
    );
    const u = await mod.handlers['create ftp user'](req, call);
    assert.deepEqual(u, {
      username: 'sysuser',
      home: docroot,
      uid: www.uid,
      gid: www.gid,
      enabled: true,
      homeExists: true,
    });
    assert.match(
      readFileSync(paths.userFile, 'utf8'),
      /^sysuser:\$6\$.*:ponio:.*public_html:\/usr\/sbin\/nologin$/m,
    );
    await adapter().check();
  });

  test('a configuration proftpd refuses: start fails with its output and leaves nothing behind', async () => {
    await fsp.rm(paths.snippet);
    const users = readFileSync(paths.userFile);
    await fsp.writeFile(path.join(paths.confD, 'zz-broken.conf'), 'BogusDirective on\n');
    try {
      await assert.rejects(adapter().start(), /proftpd configuration test failed.*BogusDirective/s);
      assert.ok(!existsSync(paths.snippet), 'snippet removed again');
      assert.deepEqual(readFileSync(paths.userFile), users, 'user file untouched');
    } finally {
      await fsp.rm(path.join(paths.confD, 'zz-broken.conf'));
    }
  });

  test('a main config without the conf.d include is refused before anything is written', async () => {
    const good = readFileSync(paths.conf, 'utf8');
    await fsp.writeFile(paths.conf, good.replace(/^Include .*conf\.d\/$/m, '# no include'));
    try {
      await assert.rejects(adapter().start(), /does not Include/);
      assert.ok(!existsSync(paths.snippet));
    } finally {
      await fsp.writeFile(paths.conf, good);
    }
  });
});
