// The firewall tab's pending-confirmation banner in a real headless Chromium, against a real panel
// and a sandbox agent whose firewall lives in a network namespace this test creates (real
// iptables there; the machine's own firewall is never touched). A risky change made from the
// dashboard shows a banner whose countdown really ticks; Confirm keeps the change; an unconfirmed
// one reverts by itself and the page reports it. Screenshots go to test-output/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium, recordProblems, signIn } from '../helpers/browser.ts';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { requireProgram, requireRoot } from '../helpers/programs.ts';
import { nsRun } from '../helpers/netns.ts';

const SHOTS = path.resolve('test-output/screenshots');
const PW = 'correct horse battery staple';
const HOST = 'fw-e2e';
const NS = `ponio-fwe2e-${randomBytes(3).toString('hex')}`;
/**
 * Short, so the revert is seen quickly; long enough to watch the countdown tick twice (each wait
 * bounded by TICK_WAIT_MS) and confirm, even on a loaded machine.
 */
const CONFIRM_SECONDS = 20;
/** How long one tick (one second of the countdown) may take to show in a busy browser. */
const TICK_WAIT_MS = 5_000;
let t: TestPanel;
let browser: Browser;
let context: BrowserContext;
const problems: string[] = [];

/** PonIO's rules in the namespace's real iptables (IPv4). */
const ownRules = (): string[] =>
  nsRun(NS, 'iptables-save', [])
    .split('\n')
    .filter((l) => l.startsWith('-A PONIO-INPUT'));

/** The countdown's seconds as the page shows them (`9 s`). */
async function secondsShown(page: Page): Promise<number> {
  const text = (await page.locator('#fw-countdown').textContent()) ?? '';
  const m = /^(\d+) s$/.exec(text.trim());
  assert.ok(m?.[1], `countdown text: ${JSON.stringify(text)}`);
  return Number(m[1]);
}

/**
 * Waits (bounded) until the countdown shows fewer seconds than `from` and returns what it shows.
 * A frozen countdown still fails; a loaded machine whose page timer fires late does not.
 */
async function ticksBelow(page: Page, from: number): Promise<number> {
  const until = Date.now() + TICK_WAIT_MS;
  let now = await secondsShown(page);
  while (now >= from && Date.now() < until) {
    await page.waitForTimeout(200);
    now = await secondsShown(page);
  }
  return now;
}

/** Adds a rule through the tab's own form, as an operator would. */
async function addRuleFromForm(page: Page, action: string, port: string, comment: string): Promise<void> {
  const form = page.locator('#fw-add');
  await form.getByLabel('Action').selectOption(action);
  await form.getByLabel('Protocol').selectOption('tcp');
  await form.getByLabel('Port or range').fill(port);
  await form.getByLabel('Comment').fill(comment);
  await form.getByRole('button', { name: 'Add rule' }).click();
  await page.waitForURL(`${t.url}/hosts/${HOST}/firewall`);
}

before(async () => {
  requireProgram('chromium', 'chromium'); // before anything is started
  requireRoot('the firewall browser test');
  requireProgram('ip', 'iproute2');
  requireProgram('iptables-restore', 'iptables');
  mkdirSync(SHOTS, { recursive: true });
  execFileSync('ip', ['netns', 'add', NS]);
  t = await startTestPanel();
  await t.addSandboxHost(HOST, {
    modules: {
      websites: false,
      ftp: false,
      mysql: false,
      firewall: { netns: NS, confirmTimeoutSeconds: CONFIRM_SECONDS },
    },
  });
  await t.panel.ctx.accounts.users.create({ username: 'fwe2e', password: PW, role: 'operator' });
  browser = await launchChromium();
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
  try {
    execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  } catch {
    /* never created */
  }
});

test('firewall tab: a risky change shows a live countdown; Confirm keeps it; an unconfirmed one reverts', async () => {
  const page = recordProblems(await context.newPage(), problems);
  await signIn(page, t.url, 'fwe2e', PW);

  const tab = `${t.url}/hosts/${HOST}/firewall`;
  await page.goto(tab);
  await page.locator('#fw-no-rules').waitFor();
  assert.equal(await page.locator('#fw-pending').count(), 0);

  // Closing SSH is risky: applied in confirm mode, with a banner and a countdown.
  await addRuleFromForm(page, 'deny', '22', 'e2e confirm');
  const banner = page.locator('#fw-pending');
  await banner.waitFor();
  assert.match((await banner.textContent()) ?? '', /closes TCP port 22/);
  const first = await secondsShown(page);
  assert.ok(first > 0 && first <= CONFIRM_SECONDS, `countdown starts at ${first}`);
  const second = await ticksBelow(page, first);
  assert.ok(second < first, `the countdown ticks down (${first} s, then ${second} s)`);
  // Another operator's change (refused while one is pending) refreshes the tab live: the
  // re-rendered banner must keep counting.
  await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });
  await page.locator('#fw-countdown').evaluate((el) => el.setAttribute('data-old', 'yes'));
  const other = await t.request('POST', `/api/v1/hosts/${HOST}/firewall/rules`, {
    body: { action: 'deny', protocol: 'tcp', port: 8080 },
  });
  assert.equal(other.status, 409, other.text);
  await page.locator('#fw-countdown:not([data-old])').waitFor({ timeout: 10_000 });
  const third = await secondsShown(page);
  const fourth = await ticksBelow(page, third);
  assert.ok(fourth < third, `the refreshed countdown ticks down too (${third} s, then ${fourth} s)`);
  assert.ok(
    ownRules().some((l) => l.includes('--dport 22') && l.endsWith('-j DROP')),
    'in force while pending',
  );
  await page.screenshot({ path: path.join(SHOTS, 'firewall-pending.png'), fullPage: true });
  const dueAt = Date.now() + fourth * 1000;

  await banner.getByRole('button', { name: /Confirm/ }).click();
  await page.waitForURL(tab);
  await page.getByText('Firewall change confirmed; it stays.').first().waitFor();
  assert.equal(await page.locator('#fw-pending').count(), 0, 'the banner is gone');
  const row = page.locator('#fw-rules tr[data-rule-id]', { hasText: 'e2e confirm' });
  assert.equal(await row.count(), 1, 'the rule is listed');
  const ruleId = await row.getAttribute('data-rule-id');
  assert.ok(ruleId);
  await page.screenshot({ path: path.join(SHOTS, 'firewall-confirmed.png'), fullPage: true });

  // Past the time it would have reverted: still there, on the page and in iptables.
  await page.waitForTimeout(Math.max(0, dueAt - Date.now()) + 1500);
  await page.reload();
  assert.equal(await page.locator(`tr[data-rule-id="${ruleId}"]`).count(), 1, 'the confirmed rule stays');
  assert.equal(await page.locator('#fw-pending').count(), 0);
  assert.ok(ownRules().some((l) => l.includes(`ponio:${ruleId}`)));
  const del = await t.request('DELETE', `/api/v1/hosts/${HOST}/firewall/rules/${ruleId}`);
  assert.equal(del.status, 200, del.text);

  // Not confirmed: the agent reverts it by itself, and the open page says so and reloads.
  await page.goto(tab);
  await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });
  await addRuleFromForm(page, 'reject', '22', 'e2e revert');
  await page.locator('#fw-pending').waitFor();
  await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });
  assert.ok(ownRules().some((l) => l.includes('--dport 22') && l.includes('-j REJECT')));
  const reverted = page.locator('#toasts .toast', { hasText: 'The pending firewall change was reverted' });
  await reverted.waitFor({ timeout: (CONFIRM_SECONDS + 10) * 1000 });
  await page.screenshot({ path: path.join(SHOTS, 'firewall-reverted.png'), fullPage: true });
  // The countdown reloads the page once it runs out: the banner and the rule are gone.
  await page.locator('#fw-no-rules').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#fw-pending').count(), 0);
  assert.equal(await page.locator('#fw-rules tr[data-rule-id]').count(), 0);
  assert.ok(!ownRules().some((l) => l.includes('--dport 22')), 'gone from iptables');
  assert.deepEqual(problems, [], 'no console errors (CSP included)');
});
