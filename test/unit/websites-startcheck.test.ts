// The start check's parsing (apache-startcheck.ts): the include list of `apache2 -t -D
// DUMP_INCLUDES`, log directives with Define/env variables, and tracing Apache's failure line back
// to the file. On real files in a temp dir.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  filesBlamed,
  logTargets,
  parseIncludes,
  startFaults,
  withoutIncludeList,
} from '../../agent/modules/websites/apache-startcheck.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-startcheck-'));
after(() => fsp.rm(dir, { recursive: true, force: true }));

test('the include list is parsed and removed from the output shown to the admin', () => {
  const out =
    'Included configuration files:\n  (*) /etc/apache2/apache2.conf\n    (225) /etc/apache2/sites-enabled/a b.conf\n';
  assert.deepEqual(parseIncludes(out), ['/etc/apache2/apache2.conf', '/etc/apache2/sites-enabled/a b.conf']);
  assert.equal(withoutIncludeList(`${out}AH00558: warning`), 'AH00558: warning');
});

test('log targets: quoted, relative, ${VAR} from Define and env; pipes, syslog, unknown variables skipped', async () => {
  const main = path.join(dir, 'main.conf');
  const site = path.join(dir, 'site.conf');
  await fsp.writeFile(main, 'Define LOGS /var/log/x\n# ErrorLog /commented\nErrorLog "${LOGS}/error.log"\n');
  await fsp.writeFile(
    site,
    [
      'CustomLog ${APACHE_LOG_DIR}/access.log combined',
      'TransferLog logs/relative.log',
      'ErrorLog "|/usr/bin/logger"',
      'ErrorLog syslog:local1',
      'CustomLog ${NOBODY}/x.log combined',
      'ErrorLog \\',
      '   /continued.log',
    ].join('\n'),
  );
  const logs = await logTargets([main, site], '/srv/root', new Map([['APACHE_LOG_DIR', '/var/log/apache2']]));
  assert.deepEqual(
    logs.map((l) => [path.basename(l.file), l.line, l.directive, l.target]),
    [
      ['main.conf', 3, 'ErrorLog', '/var/log/x/error.log'],
      ['site.conf', 1, 'CustomLog', '/var/log/apache2/access.log'],
      ['site.conf', 2, 'TransferLog', '/srv/root/logs/relative.log'],
      ['site.conf', 6, 'ErrorLog', '/continued.log'],
    ],
  );
});

test('faults: a directory, a missing directory, a file as directory; a creatable file is fine', async () => {
  const conf = path.join(dir, 'faults.conf');
  await fsp.mkdir(path.join(dir, 'adir'));
  await fsp.writeFile(path.join(dir, 'afile'), '');
  await fsp.writeFile(
    conf,
    [
      `ErrorLog ${dir}/adir`,
      `ErrorLog ${dir}/missing/x.log`,
      `ErrorLog ${dir}/afile/x.log`,
      `ErrorLog ${dir}/new.log`,
      `ErrorLog ${dir}/afile`,
    ].join('\n'),
  );
  const faults = await startFaults(await logTargets([conf], '/'));
  assert.deepEqual(
    faults.map((f) => f.message),
    [
      `${conf} line 1: the ErrorLog ${dir}/adir is a directory`,
      `${conf} line 2: the ErrorLog ${dir}/missing/x.log cannot be created: its directory ${dir}/missing does not exist`,
      `${conf} line 3: the ErrorLog ${dir}/afile/x.log cannot be created: ${dir}/afile is not a directory`,
    ],
  );
});

test("Apache's failure line is traced back to the file that names that log", async () => {
  const conf = path.join(dir, 'blame.conf');
  await fsp.writeFile(conf, `ErrorLog ${dir}/dangling.log\nCustomLog ${dir}/other.log combined\n`);
  const logs = await logTargets([conf], '/');
  const out = `(2)No such file or directory: AH00091: apache2: could not open error log file ${dir}/dangling.log.\nAH00015: Unable to open logs`;
  assert.deepEqual(
    filesBlamed(out, logs).map((l) => l.line),
    [1],
  );
  assert.deepEqual(filesBlamed('AH00015: Unable to open logs', logs), []);
});
