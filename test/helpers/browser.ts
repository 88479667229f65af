// Shared pieces of the browser tests: Debian's Chromium driven by playwright-core, a page that
// records its console and page errors, and signing in through the login form.
import { chromium, type Browser, type Page } from 'playwright-core';
import { requireProgram } from './programs.ts';

/** Headless Debian Chromium (fails with the package name when it is missing). */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: requireProgram('chromium', 'chromium'),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** Records the page's console errors and uncaught page errors into `problems`. */
export function recordProblems(page: Page, problems: string[]): Page {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${page.url()}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${page.url()}: page error: ${e.message}`));
  return page;
}

/** Signs in through the login form and waits for the overview. */
export async function signIn(page: Page, baseUrl: string, username: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${baseUrl}/`);
}
