import { promises as fsp } from 'node:fs';
import { isAlive, sleep } from '../../os/process.ts';
import { resourceShortage } from '../../os/resource-fault.ts';
import type { CheckResult } from './apache.ts';

// Both modes: Apache reports each new generation in its main error log.
const READY = /AH00489|resuming normal operations/;
// AH00099/AH00100/AH10231: the pid file could not be written (e.g. a full disk).
const FAILED =
  /AH00015|AH00016|AH00072|AH00076|AH00099|AH00100|AH10231|no listening sockets|Configuration Failed|Unable to open logs/;

export async function logSize(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return 0;
  }
}

/** What Apache appended to `file` after `offset` (all of it when the log was rotated meanwhile). */
export async function logSince(file: string, offset: number): Promise<string> {
  let fh;
  try {
    fh = await fsp.open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await fh.stat();
    const from = size < offset ? 0 : offset;
    if (size <= from) return '';
    const buf = Buffer.alloc(Math.min(size - from, 256 * 1024));
    await fh.read(buf, 0, buf.length, from);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Waits until Apache logs "resuming normal operations" in its main error log after `offset`, a
 * failure, or the death of `pid` (the server that was signalled).
 */
export async function waitForReady(
  errorLog: string,
  offset: number,
  pid: number | null,
  timeoutMs = 15_000,
): Promise<CheckResult> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const text = await logSince(errorLog, offset);
    if (READY.test(text)) return { ok: true, output: '' };
    if (FAILED.test(text)) return { ok: false, output: text.trim().split('\n').slice(-20).join('\n') };
    if (pid !== null && !isAlive(pid))
      return { ok: false, output: text.trim() || 'Apache exited during the reload.' };
    if (Date.now() > deadline)
      return {
        ok: false,
        output: `Apache did not report ready within ${timeoutMs / 1000} s. ${text.trim()}`,
      };
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * A failed start or reload, explained: Apache cannot log why it died when its log is on a full
 * disk (the AH10231 "Failed creating pid file" line is lost), so the file systems it writes to
 * are checked and a full or read-only one is named.
 */
export async function explained(r: CheckResult, dirs: readonly string[]): Promise<CheckResult> {
  if (r.ok) return r;
  const shortage = await resourceShortage(dirs);
  return shortage === '' ? r : { ...r, output: `${r.output}\n${shortage}`.trim() };
}
