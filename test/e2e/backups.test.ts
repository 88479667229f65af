// The Backups tab in a real headless Chromium: back up now, the snapshot listed with its size,
// a restore through the confirmation dialog that says what it replaces, against a real panel, a
// sandbox agent (private Apache) and the real restic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext } from 'playwright-core';
import { launchChromium, recordProblems, signIn } from '../helpers/browser.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { fetchSite, portOf } from '../helpers/websites.ts';

const SHOTS = path.resolve('test-output/screenshots');
const PW = 'correct horse battery staple';
const HOST = 'bk-e2e';
const SITE = 'browser.backup.test';
let t: TestPanel;
let browser: Browser;
let context: BrowserContext;
let sandbox: string;
let port: number;
const problems: string[] = [];

before(async () => {
  requireProgram('chromium', 'chromium');
  requireRoot('the Backups browser test');
  requireProgram('restic', 'restic');
  requireProgram('apache2', 'apache2');
  mkdirSync(SHOTS, { recursive: true });
  t = await startTestPanel();
  sandbox = (await t.addSandboxHost(HOST, { modules: { ftp: false, mysql: false, firewall: false } }))
    .sandboxDir;
  const w = await t.request('POST', `/api/v1/hosts/${HOST}/websites`, { body: { domain: SITE } });
  assert.equal(w.status, 201, w.text);
  port = portOf(
    (await t.request<{ data: { url: string } }>('GET', `/api/v1/hosts/${HOST}/websites`)).body.data.url,
  );
  await fsp.writeFile(path.join(sandbox, 'var/www', SITE, 'public_html/index.html'), '<p>before</p>\n');
  await t.panel.ctx.accounts.users.create({ username: 'bkadmin', password: PW, role: 'admin' });
  browser = await launchChromium();
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
});

test('Backups tab: back up now, the snapshot listed with its size, restore through the dialog', async () => {
  const page = recordProblems(await context.newPage(), problems);
  await signIn(page, t.url, 'bkadmin', PW);
  await page.goto(`${t.url}/hosts/${HOST}/backups`);
  await page.locator('#backups-empty').waitFor();
  await page.locator('#backup-now').click();
  const row = page.locator(`#backups-table tr[data-name="${SITE}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /KiB|B\b/);
  assert.match(await page.locator('#backup-runs').innerText(), /ok/);

  await fsp.writeFile(path.join(sandbox, 'var/www', SITE, 'public_html/index.html'), '<p>after</p>\n');
  await row.locator('summary', { hasText: 'Restore' }).click();
  assert.match(
    await row.locator('.restore-replaces').innerText(),
    new RegExp(`Replaces the files, vhost and FTP accounts of the website ${SITE.replace(/\./g, '\\.')}`),
  );
  await row.getByLabel(/yes, replace/).check();
  await row.getByRole('button', { name: 'Restore', exact: true }).click();
  await page.locator('#confirm-modal').getByRole('button', { name: 'Yes, do it' }).click();
  await page.getByText('was restored from snapshot').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'backups.png'), fullPage: true });
  assert.match((await fetchSite(port, SITE)).body, /before/);
  // The replaced state is itself a snapshot now.
  assert.match(await page.locator('#backups-table').innerText(), /pre-restore/);
  assert.deepEqual(problems, [], 'no console errors (CSP included)');
});
