import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, recordProblems, signIn } from '../helpers/browser.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram } from '../helpers/programs.ts';
import { enrollWith, freePort, lightSandbox, serveAgent } from '../helpers/enroll.ts';
import type { AgentProcess } from '../helpers/agent-process.ts';

// The dashboard in a real headless Chromium (Debian package `chromium`) against a real panel
// with a real sandbox agent. Screenshots of the main pages go to test-output/screenshots/.
const SHOTS = path.resolve('test-output/screenshots');
const PW = 'correct horse battery staple';
const HOST = 'sandbox';
// The sandbox firewall lives in a network namespace of this test's own.
const NS = `ponio-e2e-${randomBytes(3).toString('hex')}`;
let t: TestPanel;
let sandboxDir: string;
let browser: Browser;
const problems: string[] = [];
const contexts: BrowserContext[] = [];
const agents: AgentProcess[] = [];

async function newPage(): Promise<Page> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  contexts.push(ctx);
  const page = await ctx.newPage();
  recordProblems(page, problems);
  return page;
}

const login = (page: Page, username: string): Promise<void> => signIn(page, t.url, username, PW);

/** Screenshot for review, after the page's basic accessibility check (collected in `problems`). */
async function shot(page: Page, name: string): Promise<Buffer> {
  problems.push(...(await a11yProblems(page)));
  return page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Form fields without a label, buttons and links without an accessible name, no page language. */
function a11yProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const where = location.pathname;
    for (const el of document.querySelectorAll<HTMLInputElement>(
      'input:not([type=hidden]), select, textarea',
    )) {
      const named =
        (el.labels?.length ?? 0) > 0 ||
        !!el.getAttribute('aria-label') ||
        !!el.getAttribute('aria-labelledby') ||
        !!el.getAttribute('title');
      if (!named) out.push(`${where}: ${el.outerHTML.slice(0, 160)} has no label`);
    }
    for (const el of document.querySelectorAll<HTMLElement>('button, a[href]')) {
      const name = (el.textContent ?? '').trim() || el.getAttribute('aria-label') || el.getAttribute('title');
      if (!name) out.push(`${where}: ${el.outerHTML.slice(0, 160)} has no accessible name`);
    }
    if (!document.documentElement.lang) out.push(`${where}: <html> has no lang attribute`);
    if (!document.title.trim()) out.push(`${where}: no <title>`);
    return out;
  });
}

before(async () => {
  requireProgram('chromium', 'chromium'); // before anything is started
  mkdirSync(SHOTS, { recursive: true });
  requireProgram('ip', 'iproute2');
  t = await startTestPanel();
  execFileSync('ip', ['netns', 'add', NS]);
  sandboxDir = (await t.addSandboxHost(HOST, { modules: { firewall: { netns: NS } } })).sandboxDir;
  await t.panel.ctx.accounts.users.create({ username: 'alice', password: PW, role: 'admin' });
  await t.panel.ctx.accounts.users.create({ username: 'bob', password: PW, role: 'admin' });
  await t.panel.ctx.accounts.users.create({ username: 'vera', password: PW, role: 'viewer' });
  browser = await launchChromium();
});
after(async () => {
  for (const a of agents) await a.stop();
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
  try {
    execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  } catch {
    /* never created */
  }
});

test('sign in, see the sandbox host online and live, visit every page', async () => {
  const page = await newPage();
  await page.goto(t.url);
  await page.waitForURL(/\/login/);
  await shot(page, 'login');
  await login(page, 'alice');
  const state = page.locator(`[data-host-state="${HOST}"]`).first();
  assert.equal((await state.textContent())?.trim(), 'online');
  await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });
  await shot(page, 'overview');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'overview-phone');
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.getByRole('link', { name: HOST, exact: true }).click();
  await page.waitForURL(`${t.url}/hosts/${HOST}`);
  await page.locator('#sys-hostname').waitFor();
  await shot(page, 'host-system');
  for (const [tab, name] of [
    ['ftp', 'host-ftp'],
    ['mysql', 'host-databases'],
    ['firewall', 'host-firewall'],
  ] as const) {
    const r = await page.goto(`${t.url}/hosts/${HOST}/${tab}`);
    assert.ok(r && r.status() < 500, `${tab} tab answers`);
    assert.equal(await page.getByText('Not available on this host').count(), 0, `${tab} tab is live`);
    assert.equal(await page.getByText('no longer match').count(), 0, `${tab}: no false drift warning`);
    await shot(page, name);
  }
  for (const p of ['audit', 'users', 'tokens', 'settings', 'account/password']) {
    const r = await page.goto(`${t.url}/${p}`);
    assert.equal(r?.status(), 200, p);
    await shot(page, p.replace('/', '-'));
  }
});

test('create a website; a second browser sees it arrive live; toasts; sign out', async () => {
  const domain = `e2e-${Date.now()}.example`;
  const watcher = await newPage();
  await login(watcher, 'bob');
  await watcher.goto(`${t.url}/hosts/${HOST}/websites`);
  await watcher.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });

  const page = await newPage();
  await login(page, 'alice');
  await page.goto(`${t.url}/hosts/${HOST}/websites`);
  const form = page.locator('form[action$="/websites/create"]');
  await form.locator('input[name="domain"]').fill(domain);
  await form.locator('button[type="submit"]').click();
  await page.waitForURL(`${t.url}/hosts/${HOST}/websites`);
  await page.locator('#tab-content').getByText(domain).first().waitFor({ timeout: 30_000 });
  await shot(page, 'host-websites');

  // The other browser did not reload: the change arrived over socket.io.
  await watcher.locator('#tab-content').getByText(domain).first().waitFor({ timeout: 30_000 });
  await watcher.locator('#toasts .toast').first().waitFor({ timeout: 10_000 });
  await shot(watcher, 'live-update');

  // Live progress: on a slow host (sandbox hook: each Apache reload waits 2 s) the button shows the
  // agent's current step of this very call while the page waits for the reply. (Playwright cannot
  // query a page whose navigation is pending: an observer injected into the page reports what
  // the step label shows.)
  const seen: string[] = [];
  await page.exposeFunction('ponioStepSeen', (text: string) => seen.push(text));
  await page.addInitScript(() => {
    const report = (window as unknown as { ponioStepSeen: (t: string) => void }).ponioStepSeen;
    new MutationObserver(() => {
      document.querySelectorAll('[data-progress-step]').forEach((el) => report(el.textContent ?? ''));
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  await page.goto(`${t.url}/hosts/${HOST}/websites`);
  const hooks = path.join(sandboxDir, 'var/lib/ponio-agent/websites-test-hooks.json');
  writeFileSync(hooks, JSON.stringify({ slowReloadMs: 2_000 }));
  try {
    await form.locator('input[name="domain"]').fill(`slow-${domain}`);
    await form.locator('button[type="submit"]').click();
    await page.locator('#tab-content').getByText(`slow-${domain}`).first().waitFor({ timeout: 30_000 });
  } finally {
    rmSync(hooks, { force: true });
  }
  assert.ok(seen.includes('Reloading Apache…'), `progress shown: ${JSON.stringify(seen)}`);
  assert.ok(seen.indexOf('Testing the Apache configuration…') < seen.indexOf('Reloading Apache…'));

  await page.locator('#user-menu').click();
  await page.locator('#logout').click();
  await page.waitForURL(/\/login$/);
  const back = await page.goto(`${t.url}/`);
  assert.match(back?.url() ?? '', /\/login/);
});

test('a website with PHP and HTTPS (own certificate) in Chromium, opened over HTTPS', async () => {
  const domain = `php-tls-${Date.now()}.example`;
  const page = await newPage();
  await login(page, 'alice');
  await page.goto(`${t.url}/hosts/${HOST}/websites`);
  const form = page.locator('form[action$="/websites/create"]');
  await form.locator('input[name="domain"]').fill(domain);
  await form.locator('select[name="php"]').selectOption('8.2');
  await form.locator('button[type="submit"]').click();
  const row = page.locator(`tr[data-website="${domain}"]`);
  await row.waitFor({ timeout: 30_000 });
  assert.match((await row.locator('.website-php').textContent()) ?? '', /PHP 8\.2/);
  // The site's content, as its user would upload it.
  const docroot = path.join(sandboxDir, `var/www/${domain}/public_html`);
  const st = statSync(docroot);
  writeFileSync(
    path.join(docroot, 'index.php'),
    '<?php echo "<h1>PHP ", PHP_VERSION, " as ", posix_getpwuid(posix_geteuid())["name"], "</h1>";',
  );
  chownSync(path.join(docroot, 'index.php'), st.uid, st.gid);
  // A certificate of the admin's own (self-signed here), pasted into the HTTPS form.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ponio-e2e-tls-'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
      ...['-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain}`],
      ...['-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')],
    ],
    { stdio: 'pipe' },
  );
  await row.locator('summary', { hasText: 'HTTPS…' }).click();
  const tls = row.locator('form[action$="/https"]');
  await tls.locator('select[name="https"]').selectOption('own');
  await tls.locator('input[name="redirect"]').check();
  await tls.locator('textarea[name="certificate"]').fill(readFileSync(path.join(dir, 'c.pem'), 'utf8'));
  await tls.locator('textarea[name="key"]').fill(readFileSync(path.join(dir, 'k.pem'), 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  await tls.locator('button[type="submit"]').click();
  await page.waitForURL(`${t.url}/hosts/${HOST}/websites`);
  await page.getByText(`HTTPS is on for ${domain}`).first().waitFor({ timeout: 30_000 });
  assert.match(
    (await page.locator(`tr[data-website="${domain}"] .website-https`).textContent()) ?? '',
    /HTTPS own/,
  );
  assert.doesNotMatch(await page.content(), /PRIVATE KEY/, 'the key is never shown again');
  await shot(page, 'host-websites-php-https');

  // Open the site: a browser that resolves the name to the sandbox Apache, over plain HTTP first
  // (redirected to HTTPS), the page made by the site's PHP.
  const info = JSON.parse(readFileSync(path.join(sandboxDir, 'run/apache.json'), 'utf8')) as {
    port: number;
    httpsPort: number;
  };
  const visitor = await launchChromium([`--host-resolver-rules=MAP ${domain} 127.0.0.1`]);
  try {
    const ctx = await visitor.newContext({ ignoreHTTPSErrors: true });
    const site = await ctx.newPage();
    const r = await site.goto(`http://${domain}:${info.port}/`);
    assert.equal(new URL(site.url()).protocol, 'https:', 'redirected to HTTPS');
    assert.equal(r?.status(), 200);
    assert.match((await site.locator('h1').textContent()) ?? '', /^PHP 8\.2\.\d+ as ponio-/);
    const cert = await r?.securityDetails();
    assert.equal(cert?.subjectName, domain, 'served with the uploaded certificate');
  } finally {
    await visitor.close();
    // The site has a real system user: delete the site (and with it the user).
    await t.request('DELETE', `/api/v1/hosts/${HOST}/websites/${domain}?removeFiles=true`);
  }
});

test('Add host wizard: copy the command, run it on a new host, watch the host come online live', async () => {
  const page = await newPage();
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
  await login(page, 'alice');
  await page
    .getByRole('link', { name: /Add host/ })
    .first()
    .click();
  await page.waitForURL(`${t.url}/hosts/new`);
  await shot(page, 'add-host');
  const port = await freePort();
  await page.getByLabel('Name').fill('e2e-web');
  await page.getByLabel('Address').fill('127.0.0.1');
  await page.getByLabel('Agent port').fill(String(port));
  await page.locator('#add-host-form button[type="submit"]').click();
  await page.locator('#enroll-command-card').waitFor({ timeout: 15_000 });
  await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });
  const badge = page.locator('#enroll-command-card [data-host-state="e2e-web"]');
  assert.equal((await badge.textContent())?.trim(), 'waiting for the agent');
  // The one line that is shown first: the installer when the panel serves an agent, else enroll.
  const target =
    (await page.locator('#install-command').count()) > 0 ? '#install-command' : '#enroll-command';
  const shown = ((await page.locator(target).textContent()) ?? '').trim();
  assert.match(shown, /--token \S+ --ca-pin sha256:[0-9a-f]{64}/);
  await page.locator(`button[data-copy-target="${target}"]`).click();
  await page.getByText('Copied to the clipboard.').waitFor({ timeout: 5_000 });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shown);
  // On the "new host" (a sandbox dir, no services), run the enroll command as copied, then serve.
  const enrollCmd = ((await page.locator('#enroll-command').textContent()) ?? '').trim();
  const sbx = lightSandbox('e2e-wizard');
  const enrolled = await enrollWith(enrollCmd, sbx.dir, port);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  agents.push(await serveAgent(sbx.configFile));
  // No reload: the badge on the wizard page turns online over socket.io.
  await page.locator('#enroll-command-card [data-host-state="e2e-web"]', { hasText: 'online' }).waitFor({
    timeout: 30_000,
  });
  await shot(page, 'add-host-online');
  const token = /--token (\S+)/.exec(shown)?.[1] ?? '';
  await page.goto(`${t.url}/hosts/e2e-web`);
  assert.ok(!(await page.content()).includes(token), 'the join token is shown only once');
});

test('a viewer sees no mutating forms, and a forged POST is refused', async () => {
  const page = await newPage();
  await login(page, 'vera');
  assert.equal(await page.locator('#add-host').count(), 0);
  for (const tab of ['', '/websites', '/ftp', '/mysql', '/firewall']) {
    await page.goto(`${t.url}/hosts/${HOST}${tab}`);
    const posts = await page.locator('#tab-content form[method="post"]').count();
    const pings = await page.locator('#tab-content form[action$="/ping"]').count();
    assert.equal(posts - pings, 0, `no mutating form on ${tab || 'system'}`);
  }
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute('content');
  const forged = await page.evaluate(async (token) => {
    const r = await fetch('/users', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        _csrf: token ?? '',
        username: 'sneaky',
        password: 'abcdefghijkl',
        role: 'admin',
      }),
    });
    return r.status;
  }, csrf);
  assert.equal(forged, 403);
  assert.equal(t.panel.ctx.accounts.users.getByName('sneaky'), null);
});

test('a POST without the CSRF token is refused', async () => {
  const page = await newPage();
  await login(page, 'alice');
  const r = await page.context().request.post(`${t.url}/users`, {
    form: { username: 'nocsrf', password: 'abcdefghijkl', role: 'admin' },
  });
  assert.equal(r.status(), 403);
  assert.equal(t.panel.ctx.accounts.users.getByName('nocsrf'), null);
});

test('no console errors and no unlabelled field, nameless button or link on any page', () => {
  // Expected 403s from the forged requests above are network results, not console errors of the pages' own code.
  const real = problems.filter((p) => !/status of 403/.test(p));
  assert.deepEqual(real, []);
});
