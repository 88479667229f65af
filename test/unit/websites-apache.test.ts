// The system-mode Apache adapter's commands, with a recording exec (the system tests never touch
// the host's own /etc/apache2; they run the sandbox adapter against a real Apache).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { createApacheHost } from '../../agent/modules/websites/apache.ts';
import type { Exec, ExecResult } from '../../agent/os/exec.ts';
import { sandboxLayout, systemLayout } from '../../agent/os/layout.ts';

function recorder(result: ExecResult = { code: 0, stdout: '', stderr: '' }) {
  const calls: Array<{ bin: string; args: readonly string[] }> = [];
  const exec: Exec = (bin, args) => {
    calls.push({ bin, args });
    return Promise.resolve(result);
  };
  return { calls, exec };
}

const logger = pino({ level: 'silent' });

test('system mode: Debian layout, a2ensite-style paths, vhosts on *:80', () => {
  const a = createApacheHost(systemLayout(), recorder().exec, logger);
  assert.equal(a.mode, 'system');
  assert.equal(a.sitesAvailable, '/etc/apache2/sites-available');
  assert.equal(a.sitesEnabled, '/etc/apache2/sites-enabled');
  assert.equal(a.wwwRoot, '/var/www');
  assert.equal(a.vhostListen, '*:80');
  assert.equal(a.url(), undefined);
});

test("system mode: the checker is Debian's apache2ctl listing the files it read, a candidate is tested with -c Include", async () => {
  const r = recorder();
  const a = createApacheHost(systemLayout(), r.exec, logger);
  // No include list in the (recorded) output: no log files to check.
  assert.deepEqual(await a.configTest(), { ok: true, output: '', logs: [] });
  await a.configTest('/etc/apache2/sites-available/example.com.conf');
  assert.deepEqual(r.calls, [
    { bin: 'apache2ctl', args: ['-t', '-D', 'DUMP_INCLUDES'] },
    {
      bin: 'apache2ctl',
      args: ['-t', '-D', 'DUMP_INCLUDES', '-c', 'Include "/etc/apache2/sites-available/example.com.conf"'],
    },
  ]);
  await assert.rejects(a.configTest('/etc/apache2/sites-available/a b".conf'), /will not write/);
});

test('system mode: reload through systemctl when systemd runs, else apache2ctl graceful', async () => {
  const r = recorder();
  const a = createApacheHost(systemLayout(), r.exec, logger);
  await a.reload();
  assert.deepEqual(
    r.calls[0],
    existsSync('/run/systemd/system')
      ? { bin: 'systemctl', args: ['reload', 'apache2'] }
      : { bin: 'apache2ctl', args: ['graceful'] },
  );
});

test("a failing checker's output is kept for the admin", async () => {
  const r = recorder({
    code: 1,
    stdout: "Action 'configtest' failed.\n",
    stderr: 'AH00526: Syntax error on line 3\n',
  });
  const a = createApacheHost(systemLayout(), r.exec, logger);
  const res = await a.configTest();
  assert.equal(res.ok, false);
  assert.match(res.output, /AH00526: Syntax error on line 3/);
});

test('sandbox mode: everything under the sandbox, vhosts on the private port', () => {
  const a = createApacheHost(sandboxLayout('/tmp/ponio-sb-x'), recorder().exec, logger);
  assert.equal(a.sitesAvailable, '/tmp/ponio-sb-x/etc/apache2/sites-available');
  assert.equal(a.sitesEnabled, '/tmp/ponio-sb-x/etc/apache2/sites-enabled');
  assert.equal(a.wwwRoot, '/tmp/ponio-sb-x/var/www');
  assert.equal(a.vhostListen, '*:${PONIO_HTTP_PORT}');
  assert.throws(
    () => createApacheHost(sandboxLayout('/tmp/bad dir"x'), recorder().exec, logger),
    /will not write into an Apache config/,
  );
});
