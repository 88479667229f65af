// Issue 24: passkeys / security keys in a real headless Chromium (Debian `chromium`, driven by
// playwright-core) through its virtual authenticator (DevTools protocol WebAuthn domain), against
// a real panel: register on /account/two-factor, sign in with it, remove it. The panel is opened
// by the name `localhost` (browsers refuse an IP address as the WebAuthn relying party).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { launchChromium, recordProblems } from '../helpers/browser.ts';
import { startTestPanel, TEST_USER_PASSWORD, type TestPanel } from '../helpers/panel.ts';

let t: TestPanel;
let browser: Browser;
let base: string;
const contexts: BrowserContext[] = [];
const problems: string[] = [];

before(async () => {
  t = await startTestPanel();
  base = `https://localhost:${t.panel.port}`;
  await t.panel.ctx.accounts.users.create({
    username: 'kim',
    password: TEST_USER_PASSWORD,
    role: 'operator',
  });
  browser = await launchChromium();
});
after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
});

/** A page whose browser context has a CDP virtual authenticator (a platform passkey with UV). */
async function pageWithAuthenticator(): Promise<{ page: Page; cdp: CDPSession; authenticatorId: string }> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  contexts.push(ctx);
  const page = recordProblems(await ctx.newPage(), problems);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { page, cdp, authenticatorId };
}

async function passwordStep(page: Page): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill('kim');
  await page.getByLabel('Password').fill(TEST_USER_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('passkey: register, sign in with it (second factor), remove it', async () => {
  const { page, cdp, authenticatorId } = await pageWithAuthenticator();
  await passwordStep(page);
  await page.waitForURL(`${base}/`);
  const userId = t.panel.ctx.accounts.users.getByName('kim')!.id;

  // Register.
  await page.goto(`${base}/account/two-factor`);
  await page.getByLabel('Name').fill('CI key');
  await page.getByRole('button', { name: 'Add a passkey or security key' }).click();
  await page.waitForSelector('[data-passkey="CI key"]', { timeout: 20_000 });
  const stored = t.panel.ctx.twoFactor.status(userId).credentials;
  assert.equal(stored.length, 1);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'the authenticator holds the new credential');
  assert.equal(
    Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'),
    stored[0]!.credential_id,
    'the panel stored the credential the authenticator made',
  );
  assert.equal(credentials[0]!.rpId, 'localhost');
  assert.ok(t.panel.ctx.audit.query({ action: '2fa passkey add' }).total === 1);
  // Recovery codes for a first factor made by passkey.
  await page.getByLabel('Your password').last().fill(TEST_USER_PASSWORD);
  await page.getByRole('button', { name: 'Make new recovery codes' }).click();
  await page.waitForSelector('#recovery-codes');
  assert.equal(await page.locator('#recovery-codes li').count(), 10);

  // Sign out, sign in again: the password alone is not enough; the passkey completes it.
  await page.goto(`${base}/settings`);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(`${base}/login`);
  await passwordStep(page);
  await page.waitForURL(/\/login\/two-factor/);
  assert.equal(await page.locator('#passkey-signin').isEnabled(), true);
  await page.getByRole('button', { name: 'Use a passkey or security key' }).click();
  await page.waitForURL(`${base}/`, { timeout: 20_000 });
  const login = t.panel.ctx.audit
    .query({ actor: 'kim', action: 'login' })
    .rows.find((r) => r.message === 'second factor: passkey');
  assert.ok(login && login.ok === 1, 'signed in with the passkey');
  assert.ok(t.panel.ctx.twoFactor.status(userId).credentials[0]!.last_used_at !== null);

  // A browser without the credential cannot complete the second step.
  const other = await pageWithAuthenticator();
  await passwordStep(other.page);
  await other.page.waitForURL(/\/login\/two-factor/);
  await other.page.getByRole('button', { name: 'Use a passkey or security key' }).click();
  await other.page.locator('#passkey-error').waitFor({ state: 'visible', timeout: 20_000 });
  assert.match(other.page.url(), /\/login\/two-factor/);

  // Remove it (password asked): the next sign-in needs the password only.
  await page.goto(`${base}/account/two-factor`);
  await page.locator('[data-passkey="CI key"] summary').click();
  await page.locator('[data-passkey="CI key"] input[type=password]').fill(TEST_USER_PASSWORD);
  await page.getByRole('button', { name: 'Remove CI key' }).click();
  await page.waitForSelector('text=Passkey "CI key" removed.');
  assert.equal(t.panel.ctx.twoFactor.status(userId).credentials.length, 0);
  await page.goto(`${base}/settings`);
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await passwordStep(page);
  await page.waitForURL(`${base}/`);
  // The failed attempt by the other browser logs a console error for its refused fetch only.
  assert.deepEqual(
    problems.filter((p) => !/401|Unauthorized|NotAllowedError/.test(p)),
    [],
  );
});

test('passkeys need the panel opened by a DNS name: by IP the page says why', async () => {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  contexts.push(ctx);
  const page = await ctx.newPage();
  const ipBase = `https://127.0.0.1:${t.panel.port}`;
  await page.goto(`${ipBase}/login`);
  await page.getByLabel('Username').fill('kim');
  await page.getByLabel('Password').fill(TEST_USER_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${ipBase}/`);
  await page.goto(`${ipBase}/account/two-factor`);
  assert.match((await page.textContent('body')) ?? '', /need the panel opened by its DNS name/);
  assert.equal(await page.locator('#passkey-register').count(), 0);
});
