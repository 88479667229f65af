// The kill-point harness of the crash tests (test/system/crash-*.test.ts): a REAL agent process
// is SIGKILLed by its own deterministic hook (PONIO_TEST_KILL_AT="<requestId>:<N>", sandbox mode
// only; agent/journal/kill-point.ts) at step N of one mutation (the call with that requestId), for N = 1, 2, … until the call
// completes; after each kill the agent is started again (it settles the interrupted change) and
// the host must be exactly as before the call or exactly as after a complete one.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, Reply, ReplyData, RequestIn } from '../../shared/protocol/index.ts';
import { TEMP_FILE } from '../../agent/journal/sweep.ts';
import { spawnAgent, type AgentProcess } from './agent-process.ts';

/** At most this many kill points per event (a mutation has far fewer; reaching it fails the test). */
export const MAX_STEPS = 40;

export class KillHarness {
  proc: AgentProcess | null = null;
  private killAt: string | null = null;
  constructor(
    private readonly manager: ConnectionManager,
    private readonly hostId: string,
    private readonly args: string[],
  ) {}

  /** (Re)starts the agent, armed to die at `killAt` (or never), and waits until the panel sees it. */
  async start(killAt: string | null): Promise<void> {
    this.killAt = killAt;
    await this.proc?.stop();
    this.proc = await spawnAgent(this.args, {
      env: { PONIO_TEST_KILL_AT: killAt ?? '' },
      timeoutMs: 60_000,
    });
    await this.manager.waitForState(this.hostId, 'online', 30_000);
  }

  /** Restarts the agent armed as it is now (a setup that needs a fresh agent). */
  restart(): Promise<void> {
    return this.start(this.killAt);
  }

  call<E extends EventName>(event: E, params: RequestIn<E>): Promise<Reply<ReplyData<E>>> {
    return this.manager.call(this.hostId, event, params);
  }

  async ok<E extends EventName>(event: E, params: RequestIn<E>): Promise<ReplyData<E>> {
    const r = await this.call(event, params);
    assert.ok(r.ok, `${event}: ${JSON.stringify(r)}`);
    return r.data;
  }

  /** Whether the agent died by its own kill point (waits briefly for the exit to be seen). */
  async killed(): Promise<boolean> {
    const p = this.proc?.proc;
    if (!p) return false;
    for (let i = 0; i < 50 && p.exitCode === null && p.signalCode === null; i++)
      await new Promise((r) => setTimeout(r, 20));
    return p.signalCode === 'SIGKILL';
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    this.proc = null;
  }
}

export interface KillScenario<E extends EventName = EventName> {
  event: E;
  /** The call's parameters, built after each setup (e.g. the id of a rule setup made). */
  params: () => RequestIn<E> | Promise<RequestIn<E>>;
  /**
   * Brings the host into the state before the call (through the agent, with other events).
   * May return more snapshots that are whole states too (a pending firewall change that a
   * restart reverts: the state before that change).
   */
  setup(): Promise<unknown[] | void>;
  /** The host's state as the test reads it itself (files, service state), normalised. */
  snapshot(): Promise<unknown>;
}

/** Paths of atomic-write temp files under `dirs` (they must never outlive a restart). */
export async function tempFiles(dirs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    const names = await fsp.readdir(d).catch(() => [] as string[]);
    for (const n of names) if (TEMP_FILE.test(n)) out.push(path.join(d, n));
  }
  return out;
}

/** Polls `snapshot` until it equals one of `states` (services settle after a graceful reload). */
async function settled(snapshot: () => Promise<unknown>, states: readonly unknown[]): Promise<number> {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    last = await snapshot();
    const k = states.findIndex((s) => isDeepStrictEqual(s, last));
    if (k >= 0) return k;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(
    `half-applied state after a restart:\n${JSON.stringify(last, null, 1)}\nnot one of\n${states.map((s) => JSON.stringify(s, null, 1)).join('\n--- or ---\n')}`,
  );
}

export interface KillResult {
  /** Kill points the event passed through (the complete call is one more). */
  steps: number;
  /** After each kill and restart: 'absent' (as before) or 'applied' (as after). */
  outcomes: ('absent' | 'applied')[];
}

/**
 * Kills the agent at every step of one mutating event in turn and checks the host after each
 * restart. The first run (never killed) learns the state after a complete call.
 */
export async function killAtEveryStep(h: KillHarness, s: KillScenario): Promise<KillResult> {
  await h.start(null);
  const extra = (await s.setup()) ?? [];
  const before = await s.snapshot();
  await h.ok(s.event, await s.params());
  const after = await s.snapshot();
  const whole = [before, after, ...extra];
  assert.ok(!isDeepStrictEqual(before, after), `${s.event}: the call changes the snapshot`);
  const outcomes: ('absent' | 'applied')[] = [];
  for (let n = 1; n <= MAX_STEPS; n++) {
    const requestId = randomUUID();
    await h.start(`${requestId}:${n}`);
    if (n > 1) {
      const k = await settled(() => s.snapshot(), whole);
      outcomes.push(k === 1 ? 'applied' : 'absent');
    }
    await s.setup();
    assert.deepEqual(await s.snapshot(), before, `${s.event}: setup restores the state before the call`);
    const r = await h.call(s.event, { ...(await s.params()), requestId });
    if (!(await h.killed())) {
      assert.ok(r.ok, `${s.event} (no kill point ${n}): ${JSON.stringify(r)}`);
      assert.deepEqual(await s.snapshot(), after, `${s.event}: a complete call gives the same state`);
      await h.stop();
      return { steps: n - 1, outcomes };
    }
    assert.equal(!r.ok && r.error.code, 'unavailable', `${s.event} at step ${n}: the agent died mid-call`);
  }
  return assert.fail(`${s.event}: more than ${MAX_STEPS} kill points`);
}

/** A readable listing of a tree: `rel type mode uid:gid [-> target | sha256]`, sorted; `skip` prunes. */
export async function listTree(
  root: string,
  skip: (rel: string) => boolean = () => false,
): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await fsp.readdir(dir).catch(() => null))?.sort();
    if (!names) return;
    for (const name of names) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      if (skip(rel)) continue;
      const st = await fsp.lstat(p);
      const head = `${rel} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.push(`${head} -> ${await fsp.readlink(p)}`);
      else if (st.isDirectory()) {
        out.push(`${head} dir`);
        await walk(p);
      } else
        out.push(
          `${head} ${createHash('sha256')
            .update(await fsp.readFile(p))
            .digest('hex')
            .slice(0, 16)}`,
        );
    }
  };
  await walk(root);
  return out;
}
