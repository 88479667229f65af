// Through the panel's REST API with a real sandbox agent: (1) a requestId re-used with other
// parameters is refused, nothing is created, the audit says refused (issue 15 item 3); (2) a
// mutation stuck on a SIGSTOPped MariaDB answers 504 at its deadline, a second one is refused at
// once instead of running beside it, and the first does nothing late; (3) one that outlives its
// deadline after it changed the host answers 504 with outcome "unknown", the audit says unknown,
// and the panel resolves the entry from the agent's journal and tells the browsers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import type { HostChange } from '../../server/events.ts';

const HOST = 'outcomes';
let t: TestPanel;
let sandbox: string;
let stopped: number | null = null;

const auditOf = (requestId: string) =>
  t.panel.ctx.audit
    .query({ hostId: HOST, limit: 500 })
    .rows.filter((r) => r.request_id === requestId)
    .map((r) => ({ ok: r.ok, code: r.error_code, outcome: r.outcome, message: r.message }));

before(async () => {
  requireRoot('the outcome test');
  requireProgram('proftpd', 'proftpd-core');
  requireProgram('mariadbd', 'mariadb-server');
  requireProgram('apache2', 'apache2');
  t = await startTestPanel();
  sandbox = (await t.addSandboxHost(HOST, { modules: { firewall: false } })).sandboxDir;
});

after(async () => {
  if (stopped !== null) process.kill(stopped, 'SIGCONT');
  await t?.close();
});

test('a requestId re-used with other parameters is refused: nothing created, the audit says refused', async () => {
  const base = `/api/v1/hosts/${HOST}/ftp-users`;
  const requestId = randomUUID();
  const home = (u: string): string => path.join(sandbox, 'srv/ftp', u);
  const first = await t.request('POST', base, {
    body: { username: 'firstuser', password: 'first password 1', home: home('firstuser'), requestId },
  });
  assert.equal(first.status, 201, first.text);
  const again = await t.request('POST', base, {
    body: { username: 'firstuser', password: 'first password 1', home: home('firstuser'), requestId },
  });
  assert.equal(again.status, 201, 'the same call again: the first reply');
  assert.deepEqual(again.body, first.body);
  const other = await t.request<{ error: { code: string; message: string } }>('POST', base, {
    body: { username: 'otheruser', password: 'other password 1', home: home('otheruser'), requestId },
  });
  assert.equal(other.status, 400, other.text);
  assert.equal(other.body.error.code, 'invalid-argument');
  assert.match(other.body.error.message, /requestId was already used for this event with other parameters/);
  const list = await t.request<{ data: { users: { username: string }[] } }>('GET', base);
  assert.deepEqual(
    list.body.data.users.map((u) => u.username),
    ['firstuser'],
    'nothing was created by the refused call',
  );
  const audit = auditOf(requestId);
  assert.equal(audit.length, 3);
  assert.deepEqual(
    audit.map((a) => [a.ok, a.code]),
    [
      [0, 'invalid-argument'],
      [1, null],
      [1, null],
    ],
    'the audit says the reused id was refused',
  );
});

test('a mutation on a hung MariaDB: 504 at its deadline, never run twice, and nothing done late', async () => {
  const pid = Number(readFileSync(path.join(sandbox, 'run/mysqld.pid'), 'utf8').trim());
  const base = `/api/v1/hosts/${HOST}/databases`;
  process.kill(pid, 'SIGSTOP');
  stopped = pid;
  const requestId = randomUUID();
  const hung = await t.request<{ error: { code: string; outcome?: string } }>('POST', base, {
    body: { name: 'hungdb', requestId, deadlineMs: 3000 },
  });
  assert.equal(hung.status, 504, hung.text);
  assert.equal(hung.body.error.code, 'timeout');
  // It hung in its first read, before recording an intent: it can no longer change anything.
  assert.equal(hung.body.error.outcome, 'absent');
  assert.deepEqual(
    auditOf(requestId).map((a) => [a.code, a.outcome]),
    [['timeout', null]],
  );
  // Its handler still holds the module lock: a second call is refused at once, never run beside it.
  const second = await t.request<{ error: { code: string; message: string } }>('POST', base, {
    body: { name: 'hungdb' },
  });
  assert.equal(second.status, 502, second.text);
  assert.match(second.body.error.message, /mysql is stuck: "create database" started/);
  process.kill(pid, 'SIGCONT');
  stopped = null;
  await new Promise((r) => setTimeout(r, 2000));
  const dbs = await t.request<{ data: { databases: { name: string }[] } }>('GET', base);
  assert.equal(dbs.status, 200, dbs.text);
  assert.deepEqual(
    dbs.body.data.databases.filter((d) => d.name === 'hungdb'),
    [],
    'the late handler stopped at its safe point: nothing was created after the 504',
  );
  const later = await t.request('POST', base, { body: { name: 'hungdb' } });
  assert.equal(later.status, 201, later.text);
});

test('a mutation that outlives its deadline: 504 outcome unknown, audit unknown, resolved from the journal', async () => {
  // A slow reload (sandbox test hook): the create has recorded its intent and changed the host
  // when its 2 s deadline passes.
  writeFileSync(
    path.join(sandbox, 'var/lib/ponio-agent/websites-test-hooks.json'),
    JSON.stringify({ slowReloadMs: 6000 }),
  );
  const changes: HostChange[] = [];
  t.panel.ctx.events.on('hostChange', (c) => changes.push(c));
  const base = `/api/v1/hosts/${HOST}/websites`;
  const requestId = randomUUID();
  const slow = await t.request<{ error: { code: string; outcome?: string } }>('POST', base, {
    body: { domain: 'slow.test', requestId, deadlineMs: 2000 },
  });
  assert.equal(slow.status, 504, slow.text);
  assert.equal(slow.body.error.outcome, 'unknown', 'the panel says the outcome is unknown');
  assert.deepEqual(
    auditOf(requestId).map((a) => a.outcome),
    ['unknown'],
    'the audit records unknown',
  );
  const second = await t.request<{ error: { message: string } }>('POST', base, {
    body: { domain: 'other.test' },
  });
  assert.equal(second.status, 502, second.text);
  assert.match(second.body.error.message, /websites is stuck: "create website" started/);
  const end = Date.now() + 60_000;
  while (auditOf(requestId)[0]?.outcome === 'unknown' && Date.now() < end)
    await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(
    auditOf(requestId),
    [{ ok: 1, code: null, outcome: null, message: null }],
    'resolved: applied',
  );
  assert.ok(
    changes.some((c) => c.action === 'create website' && c.ok && /timed out; it was applied/.test(c.message)),
    'browsers are told',
  );
  rmSync(path.join(sandbox, 'var/lib/ponio-agent/websites-test-hooks.json'));
  const sites = await t.request<{ data: { websites: { domain: string }[] } }>('GET', base);
  assert.equal(sites.body.data.websites.filter((w) => w.domain === 'slow.test').length, 1, 'created once');
});
