// The Jobs page in a real headless Chromium (Debian package `chromium`) against a real panel and
// 12 real agents (test/helpers/fleet-agents.ts): labels set on the host page, a new job with
// the event's parameter form, the target preview and batch settings; live per-host progress over
// the browser socket (the page is never reloaded); the results table's filters; and the same
// flow with JavaScript turned off (plain forms, reloading the job page to read it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, recordProblems, signIn } from '../helpers/browser.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram } from '../helpers/programs.ts';
import { startFleet, type Fleet } from '../helpers/fleet.ts';

const PW = 'correct horse battery staple';
let t: TestPanel;
let fleet: Fleet;
let browser: Browser;
const problems: string[] = [];
const contexts: BrowserContext[] = [];

async function newPage(javaScriptEnabled = true): Promise<Page> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled });
  contexts.push(ctx);
  return recordProblems(await ctx.newPage(), problems);
}

before(async () => {
  requireProgram('chromium', 'chromium');
  t = await startTestPanel();
  fleet = await startFleet(t.panel, 'ui', 12);
  await t.panel.ctx.accounts.users.create({ username: 'olga', password: PW, role: 'operator' });
  for (const [i, id] of fleet.hostIds.entries())
    if (i > 0) t.panel.ctx.labels.set(id, { role: i < 9 ? 'web' : 'db' });
  browser = await launchChromium();
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await fleet?.stop();
  await t?.close();
});

test('labels on the host page, a job with preview, live progress, filters', async () => {
  const page = await newPage();
  await signIn(page, t.url, 'olga', PW);
  // Labels: the host page's form.
  await page.goto(`${t.url}/hosts/ui000`);
  await page.getByLabel('Labels (key=value, space separated)').fill('role=web dc=ams');
  await page.getByRole('button', { name: 'Save labels' }).click();
  await page.waitForURL(`${t.url}/hosts/ui000`);
  assert.equal(
    await page
      .locator('#host-labels a.badge')
      .allTextContents()
      .then((x) => x.join(' ')),
    'dc=ams role=web',
  );
  await page.getByLabel('Labels (key=value, space separated)').fill('role=web\nbad');
  await page.getByRole('button', { name: 'Save labels' }).click();
  await page.locator('#flash .alert-danger').waitFor();
  assert.deepEqual(
    t.panel.ctx.labels.get('ui000'),
    { dc: 'ams', role: 'web' },
    'a refused change left the labels as they were',
  );

  // New job: choosing the event re-renders its parameter form (auto-submitted by the script).
  await page.getByRole('link', { name: 'Jobs' }).click();
  await page.locator('#new-job').click();
  await page.getByLabel('Event', { exact: true }).selectOption('block ip');
  await page.locator('#p-address').waitFor();
  await page.waitForLoadState('load'); // the script that auto-submits is at the end of the page
  await page.getByLabel('Event', { exact: true }).selectOption('ping');
  await page.locator('#job-params').getByText('This event takes no parameters.').waitFor();
  await page.getByRole('radio', { name: 'Label selector' }).check();
  await page.locator('#job-selector').fill('role=web');
  await page.getByRole('button', { name: 'Preview' }).click();
  const summary = await page.locator('#preview-summary').textContent();
  assert.match(summary ?? '', /^9 hosts match: ui000, ui001, /);
  await fleet.set({ delayMs: 400, failHosts: ['ui002'] });
  await page.getByLabel('Window (hosts in flight: 10 or 10%)').fill('2');
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  await page.getByRole('button', { name: 'Start job' }).click();
  await page.waitForURL(/\/jobs\/\d+$/);
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  // Live: the recap moves on without a reload until the job is done.
  const seen = new Set<string>();
  const until = Date.now() + 30_000;
  for (;;) {
    const state = await page.locator('[data-job-state]').first().getAttribute('data-job-state');
    seen.add((await page.locator('#job-recap').textContent()) ?? '');
    if (state === 'done') break;
    assert.ok(Date.now() < until, `job not done: ${[...seen].join(' | ')}`);
    await page.waitForTimeout(100);
  }
  assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'no reload');
  assert.ok(seen.size >= 3, `intermediate progress was shown live: ${[...seen].join(' | ')}`);
  assert.equal(
    (await page.locator('#job-recap').textContent())?.trim(),
    '9 hosts: ok=8 failed=1 unreachable=0 timeout=0 skipped=0',
  );
  assert.equal(await page.locator('#job-hosts tbody tr').count(), 9);
  // Filters: only the failed host, with its error.
  await page.locator('[data-filter="failed"]').click();
  await page.waitForURL(/state=failed/);
  assert.equal(await page.locator('#job-hosts tbody tr').count(), 1);
  assert.match(
    (await page.locator('#job-hosts tbody tr').textContent()) ?? '',
    /ui002.*failed.*injected failure/s,
  );
  // Retry reaches the failed host only.
  await fleet.set({ delayMs: 0, failHosts: [] });
  await fleet.reset();
  await page.getByRole('button', { name: 'Retry failed and unreachable' }).click();
  await page.waitForURL(/\/jobs\/\d+$/);
  await page.locator('[data-job-state="done"]').waitFor({ timeout: 15_000 });
  const recap = await page.locator('#job-recap').textContent();
  assert.equal(recap?.trim(), '9 hosts: ok=9 failed=0 unreachable=0 timeout=0 skipped=0');
  assert.deepEqual(
    (await fleet.stats()).calls.filter((c) => c.event === 'ping').map((c) => c.hostId),
    ['ui002'],
  );
  assert.deepEqual(problems, []);
});

// A refused form comes back with status 400, which Chromium logs as a failed resource load.
const realProblems = (): string[] =>
  problems.filter((p) => !/\/jobs: console error: Failed to load resource: .* 400/.test(p));

test('without JavaScript: start a job with plain forms and read it', async () => {
  const page = await newPage(false);
  await signIn(page, t.url, 'olga', PW);
  await page.goto(`${t.url}/jobs/new`);
  await page.getByLabel('Event', { exact: true }).selectOption('system info');
  await page.getByRole('button', { name: 'Choose' }).click();
  await page.getByRole('radio', { name: 'Label selector' }).check();
  await page.locator('#job-selector').fill('role=db');
  await page.getByRole('button', { name: 'Preview' }).click();
  assert.match(
    (await page.locator('#preview-summary').textContent()) ?? '',
    /^3 hosts match: ui009, ui010, ui011\.$/,
  );
  // A refusal is shown on the form, which keeps what was typed.
  await page.locator('#job-window').fill('0');
  await page.getByRole('button', { name: 'Start job' }).click();
  assert.match((await page.locator('#job-error').textContent()) ?? '', /window/);
  assert.equal(await page.locator('#job-selector').inputValue(), 'role=db');
  await page.locator('#job-window').fill('100%');
  await page.getByRole('button', { name: 'Start job' }).click();
  await page.waitForURL(/\/jobs\/\d+$/);
  const url = page.url();
  const until = Date.now() + 30_000;
  while ((await page.locator('[data-job-state]').first().getAttribute('data-job-state')) !== 'done') {
    assert.ok(Date.now() < until, 'job not done');
    await page.waitForTimeout(200);
    await page.goto(url);
  }
  assert.equal(await page.locator('#job-hosts [data-outcome="ok"]').count(), 3);
  assert.match((await page.locator('#job-hosts').textContent()) ?? '', /"hostname"/);
  // The list shows it too.
  await page.goto(`${t.url}/jobs`);
  assert.match((await page.locator('#jobs-table').textContent()) ?? '', /system info.*done.*3 hosts: ok=3/s);
  assert.deepEqual(realProblems(), []);
});
