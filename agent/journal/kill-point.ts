/**
 * Deterministic kill points for the crash tests (sandbox mode only; a production agent never
 * reads the variable). `PONIO_TEST_KILL_AT="<requestId>:<N>"` makes the agent SIGKILL itself at
 * the N-th kill point of the mutation with that requestId (other calls, e.g. a test's setup, run
 * normally). Kill points sit between the host changes of
 * a mutation: the journal's own writes, every atomic write (temp file written, not yet renamed),
 * and each service-changing step the modules mark (`killPoint()`). With N = 1, 2, … a test stops
 * a real agent at every step of a mutation in turn; a call that completes has fewer steps than N.
 */
interface Armed {
  requestId: string;
  at: number;
}

let armed: Armed | null = null;
let counting = false;
let count = 0;

/** Reads the variable once at agent start; ignored outside sandbox mode. */
export function configureKillPoints(mode: 'system' | 'sandbox', env: NodeJS.ProcessEnv = process.env): void {
  armed = null;
  const spec = env.PONIO_TEST_KILL_AT;
  if (mode !== 'sandbox' || spec === undefined || spec === '') return;
  const m = /^([0-9a-f-]{36}):([1-9][0-9]{0,3})$/i.exec(spec);
  if (!m?.[1] || !m[2])
    throw new Error(`PONIO_TEST_KILL_AT must look like "<requestId>:<step>", not ${JSON.stringify(spec)}`);
  armed = { requestId: m[1].toLowerCase(), at: Number(m[2]) };
}

/** The router starts counting for the armed call (when it holds its module's lock). */
export function startKillCount(requestId: string | undefined): boolean {
  if (requestId === undefined || armed?.requestId !== requestId.toLowerCase() || counting) return false;
  counting = true;
  count = 0;
  return true;
}

/** The armed call ended without reaching its kill point. */
export function stopKillCount(): void {
  counting = false;
  armed = null;
}

/** One step of a mutation: the agent dies here when this is the armed step. */
export function killPoint(): void {
  if (!counting || armed === null) return;
  count += 1;
  if (count === armed.at) process.kill(process.pid, 'SIGKILL');
}
