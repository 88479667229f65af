// The FTP tab in a real headless Chromium: the password generator, create, and delete through the
// confirmation dialog, against a real panel, a sandbox agent and its private proftpd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, FTPError } from 'basic-ftp';
import { type Browser, type BrowserContext } from 'playwright-core';
import { launchChromium, recordProblems, signIn } from '../helpers/browser.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';

const SHOTS = path.resolve('test-output/screenshots');
const PW = 'correct horse battery staple';
const HOST = 'ftp-e2e';
let t: TestPanel;
let browser: Browser;
let context: BrowserContext;
let sandbox: string;
const problems: string[] = [];

async function ftpLogin(user: string, password: string): Promise<true | number> {
  const port = (JSON.parse(readFileSync(path.join(sandbox, 'run/proftpd.json'), 'utf8')) as { port: number })
    .port;
  const c = new Client(10_000);
  try {
    await c.access({ host: '127.0.0.1', port, user, password });
    return true;
  } catch (e) {
    if (e instanceof FTPError) return e.code;
    throw e;
  } finally {
    c.close();
  }
}

before(async () => {
  requireProgram('chromium', 'chromium'); // before anything is started
  requireRoot('the FTP browser test');
  requireProgram('proftpd', 'proftpd-core');
  mkdirSync(SHOTS, { recursive: true });
  t = await startTestPanel();
  sandbox = (await t.addSandboxHost(HOST)).sandboxDir;
  await t.panel.ctx.accounts.users.create({ username: 'ftpadmin', password: PW, role: 'admin' });
  browser = await launchChromium();
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
});

test('FTP tab: generate a password, create, log in for real, delete through the dialog', async () => {
  const page = recordProblems(await context.newPage(), problems);
  await signIn(page, t.url, 'ftpadmin', PW);

  await page.goto(`${t.url}/hosts/${HOST}/ftp`);
  await page.getByLabel('User name').fill('browser@example.com');
  await page.getByLabel('Home directory').fill(path.join(sandbox, 'srv/ftp/browser'));
  const pw = page.locator('#ftp-password');
  assert.equal(await pw.getAttribute('type'), 'password');
  await page.locator('#ftp-create [data-generate-password]').click();
  const generated = await pw.inputValue();
  assert.equal(generated.length, 20);
  assert.equal(await pw.getAttribute('type'), 'text', 'the generated password is shown');
  await page.locator('#ftp-create').getByRole('button', { name: 'Create' }).click();
  await page.locator('[data-ftp-user="browser@example.com"]').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'ftp.png'), fullPage: true });
  assert.equal(await ftpLogin('browser@example.com', generated), true);

  const row = page.locator('[data-ftp-user="browser@example.com"]');
  await row.locator('summary', { hasText: 'Delete' }).click();
  await row.getByLabel(/Yes, delete/).check();
  await row.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.locator('#confirm-modal').getByRole('button', { name: 'Yes, do it' }).click();
  await page.locator('#ftp-empty').waitFor();
  assert.equal(await ftpLogin('browser@example.com', generated), 530);
  assert.deepEqual(problems, [], 'no console errors (CSP included)');
});
