// Two panel replicas on one database, both linked to the same 8 real agents: jobs queued as the
// CLI queues them (unresolved, for whichever panel claims them) are each run by exactly one
// replica — seen from the agents' side (every host gets exactly one ping per job, never two)
// and from each replica's own per-host job events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startPanel, type RunningPanel } from '../../server/main.ts';
import { loadPanelConfig } from '../../server/config.ts';
import { openDatabase, type Db } from '../../server/db/database.ts';
import { JobsStore } from '../../server/jobs/store.ts';
import { checkJobRequest } from '../../server/jobs/request.ts';
import type { Actor } from '../../server/db/audit.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { startFleet, type Fleet } from '../helpers/fleet.ts';
import { quietLogger } from '../helpers/panel-link.ts';

const HOSTS = 8;
const JOBS = 12;
let a: TestPanel;
let b: RunningPanel | null = null;
let fleet: Fleet;
let db: Db | null = null;

before(async () => {
  a = await startTestPanel({ jobLeaseSeconds: 2 });
  fleet = await startFleet(a.panel, 'rp', HOSTS);
  // The second replica: same data dir (database and PKI), its own process state and links.
  b = await startPanel(
    loadPanelConfig(
      {
        host: '127.0.0.1',
        port: 0,
        dataDir: a.dataDir,
        logLevel: 'silent',
        agentListen: 'off',
        jobLeaseSeconds: 2,
      },
      {},
    ),
    quietLogger,
  );
  for (const id of fleet.hostIds) await b.ctx.hosts.manager.waitForState(id, 'online', 30_000);
});
after(async () => {
  db?.close();
  await b?.close();
  await fleet?.stop();
  await a?.close();
});

test('each queued job runs on exactly one of two replicas sharing the database', async () => {
  const ranBy = new Map<number, Set<string>>();
  const watch = (name: string, p: RunningPanel): void => {
    p.ctx.events.on('job', (e: { jobId: number; hostId?: string }) => {
      if (e.hostId === undefined) return;
      const s = ranBy.get(e.jobId) ?? new Set<string>();
      s.add(name);
      ranBy.set(e.jobId, s);
    });
  };
  watch('A', a.panel);
  if (b) watch('B', b);
  await fleet.reset();

  // Queued like `ponio-panel job run` does: unresolved, claimed by whichever replica gets it first.
  db = openDatabase(path.join(a.dataDir, 'panel.db'));
  const store = new JobsStore(db);
  const actor: Actor = { kind: 'cli', name: 'cli:test', role: 'admin' };
  const ids: number[] = [];
  for (let i = 0; i < JOBS; i++) {
    const c = checkJobRequest(actor, { event: 'ping', params: {}, target: { all: true }, window: 4 });
    ids.push(
      store.create({
        createdBy: actor.name,
        actor,
        event: c.event,
        params: c.params,
        hasSecrets: false,
        target: c.target,
        settings: c.settings,
        dryRun: false,
        hosts: null,
      }),
    );
  }
  const end = Date.now() + 60_000;
  while (ids.some((id) => ['queued', 'running'].includes(store.get(id)?.state ?? ''))) {
    assert.ok(Date.now() < end, 'every job finished within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const id of ids) {
    assert.equal(store.get(id)?.state, 'done', `job ${id}`);
    assert.equal(store.counts(id).ok, HOSTS, `job ${id}: every host ok`);
    assert.equal(ranBy.get(id)?.size, 1, `job ${id} ran on ${[...(ranBy.get(id) ?? [])].join(' and ')}`);
  }
  // The agents' side: exactly one ping per host per job (a job run twice would show more).
  const pings = (await fleet.stats()).calls.filter((c) => c.event === 'ping');
  assert.equal(pings.length, HOSTS * JOBS);
  for (const id of fleet.hostIds) assert.equal(pings.filter((c) => c.hostId === id).length, JOBS, id);
  // The audit has each job's host calls under it, once.
  for (const id of ids) {
    const n = db
      .prepare("SELECT COUNT(*) AS n FROM audit_log WHERE job_id = ? AND action = 'ping'")
      .get(id) as {
      n: number;
    };
    assert.equal(n.n, HOSTS, `audit of job ${id}`);
  }
});
