import { PHP_VERSIONS, type PhpVersion } from '../../../shared/protocol/events/websites.ts';
import { whichBinary, type Binary, type Exec } from '../../os/exec.ts';
import { sleep } from '../../os/process.ts';
import type { CheckResult } from './apache.ts';
import { outputOf } from './apache-config.ts';
import { logSince } from './apache-log.ts';

/** php-fpm helpers shared by both modes: which versions are installed, its checker, its reload. */

export const fpmBinary = (v: PhpVersion): Binary => `php-fpm${v}`;

/** The versions whose php-fpm binary is installed. */
export const installedVersions = (): PhpVersion[] =>
  PHP_VERSIONS.filter((v) => whichBinary(fpmBinary(v)) !== null);

/** `php-fpm<v> -t [--fpm-config FILE]`: its output for the admin. */
export async function fpmTest(exec: Exec, v: PhpVersion, conf?: string): Promise<CheckResult> {
  const args = ['-t', ...(conf !== undefined ? ['--fpm-config', conf] : [])];
  const r = await exec(fpmBinary(v), args, { timeoutMs: 30_000 });
  // php-fpm reports "test is successful" on stderr; keep only the lines that say what is wrong.
  const output = outputOf(r)
    .split('\n')
    .filter((l) => !/NOTICE|WARNING: Nothing matches the include pattern/.test(l) && l.trim() !== '')
    .join('\n');
  return { ok: r.code === 0, output };
}

/**
 * Sends SIGUSR2 (php-fpm's graceful reload: the master re-executes itself on the new config) and
 * waits for "ready to handle connections" in its log after `offset`, a failure, or a timeout.
 */
export async function signalReload(
  pid: number,
  log: string,
  offset: number,
  timeoutMs = 15_000,
): Promise<CheckResult> {
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const text = await logSince(log, offset);
    if (/ready to handle connections/.test(text)) return { ok: true, output: '' };
    if (/FPM initialization failed|failed to load configuration/.test(text))
      return { ok: false, output: text.trim().split('\n').slice(-20).join('\n') };
    if (Date.now() > deadline)
      return {
        ok: false,
        output: `php-fpm did not report ready within ${timeoutMs / 1000} s. ${text.trim()}`,
      };
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}
