import { test } from 'node:test';
import { startTestPanel } from '../helpers/panel.ts';
import { startFleet } from '../helpers/fleet.ts';
test('speed', async () => {
  const t = await startTestPanel();
  const fleet = await startFleet(t.panel, 'ui', 12);
  try {
    for (const [i, id] of fleet.hostIds.entries()) if (i > 0) t.panel.ctx.labels.set(id, { role: i < 9 ? 'web' : 'db' });
    await fleet.set({ delayMs: 400, failHosts: ['ui002'] });
    const started = Date.now();
    const r = await t.request<any>('POST', '/api/v1/jobs', { body: { event: 'ping', params: {}, target: { selector: 'role=web' }, window: 2 } });
    console.log('create', r.status, Date.now() - started, r.text.slice(0, 200));
    const done = await t.panel.ctx.jobs.waitFinished(r.body.data.id, 60_000);
    console.log('done', Date.now() - started, done.message);
  } finally {
    await fleet.stop();
    await t.close();
  }
});
