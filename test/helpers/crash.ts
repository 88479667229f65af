// The crash-safety harness (docs/development.md, "Crash tests"). A suite (test/system/crash/<name>.ts)
// declares, as data, one case per mutating event: the state before the call (`setup`, through
// the agent), the call's parameters, and how the test reads the host itself (`snapshot`).
// `runCrashSuite` then, for each case, starts a REAL sandbox agent, learns the state after a
// complete call, and for N = 1, 2, … SIGKILLs the agent at step N of the call (its own
// deterministic hook, PONIO_TEST_KILL_AT, agent/journal/kill-point.ts), restarts it, and checks:
//
// - the host is exactly as before the call or exactly as after it (the case's snapshot), and the
//   host-wide checks hold: the journal settled (no `running` record), no temp file of an atomic
//   write anywhere in the sandbox, every configured module available with its service running,
//   one agent and one instance of each private service (no orphan, no double start);
// - the requestId is answered from the journal across the restart: `call outcome` agrees with
//   the host; the same requestId with other parameters is refused (`invalid-argument`) and
//   changes nothing; the same requestId and parameters answer the recorded reply and act once
//   (for an interrupted call that was undone: it runs now, once).
//
// The guard test (test/unit/crash-coverage.test.ts) fails for any mutating event of the protocol
// catalog that no suite has a case for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { promises as fsp, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ConnectionManager } from '../../server/hosts/connection-manager.ts';
import type { EventName, Reply, ReplyData, RequestIn } from '../../shared/protocol/index.ts';
import { MODULE_NAMES, type Hello } from '../../shared/protocol/hello.ts';
import { TEMP_FILE } from '../../agent/journal/sweep.ts';
import { spawnAgent, type AgentProcess } from './agent-process.ts';
import { freePort } from './enroll.ts';
import { makeTestPki, type AgentFiles, type TestPki } from './pki.ts';
import { quietLogger } from './panel-link.ts';
import { agentBundle } from './agent-bundle.ts';
import { requireRoot } from './programs.ts';
import { tempDir } from './tmp.ts';

/** At most this many kill points per event (a mutation has far fewer; reaching it fails the test). */
export const MAX_STEPS = 40;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A free port below the kernel's ephemeral range for the agent to listen on. While the agent is
 * dead its port is free, and an ephemeral one could be handed to an outgoing connection (the
 * panel's reconnect can even connect to itself) and then block the restarted agent's listen.
 */
async function agentPort(): Promise<number> {
  const [low] = (await fsp.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768'))
    .trim()
    .split(/\s+/)
    .map(Number);
  const top = Math.min(low ?? 32768, 32768);
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * Math.max(1, top - 20_000));
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  return freePort();
}

/** Where a suite's agent lives. */
export interface CrashEnv {
  /** The suite's name (host id `crash-<name>`). */
  readonly name: string;
  readonly hostId: string;
  /** The sandbox directory (`--sandbox`). */
  readonly sandbox: string;
  /** A path in the sandbox. */
  sb(rel: string): string;
  /** A path in the agent's state directory. */
  state(rel: string): string;
  /** The agent's certificate files (a trust suite reads and changes them). */
  readonly files: AgentFiles;
  readonly pki: TestPki;
  /** The port the agent listens on (127.0.0.1). */
  readonly port: number;
}

/** One mutating event in one starting state. */
export interface CrashCase<E extends EventName = EventName> {
  event: E;
  /** Tells apart several cases of one event in the test names. */
  label?: string;
  /** The call's parameters, built after each setup (e.g. the id of a rule setup made). */
  params(h: CrashHost): RequestIn<E> | Promise<RequestIn<E>>;
  /**
   * Other valid parameters for the same event: a retry with them under the killed call's
   * requestId must be refused. Omit only for an event without parameters.
   */
  otherParams?(h: CrashHost): RequestIn<E> | Promise<RequestIn<E>>;
  /**
   * Brings the host into the state before the call (through the agent, with other events). Not
   * run when the host already is in that state (the snapshot must then cover all it sets up).
   * May return more snapshots that are whole states too (a pending firewall change that a
   * restart reverts: the state before that change).
   */
  setup(h: CrashHost): Promise<unknown[] | void>;
  /** The suite's snapshot unless the case reads something else. */
  snapshot?(h: CrashHost): Promise<unknown>;
  /** Fewest kill points the call must pass through (default 2). */
  minSteps?: number;
  /**
   * The agent's start itself brings the host to the state after the call (`reapply firewall`
   * repairs drift at every start), so the host cannot tell whether the killed call ran.
   */
  startApplies?: boolean;
  /**
   * The call's change waits for a confirmation that an agent start does not give (a firewall
   * change in confirm mode): a restart reverts it even when the call had ended, so the journal
   * may say done for a host without the change (the recorded reply is still what a retry gets).
   */
  restartReverts?: boolean;
}

/** Declares one case with its event's own parameter types. */
export const crashCase = <E extends EventName>(c: CrashCase<E>): CrashCase => c;

/** The crash cases of one agent configuration (usually one module). */
export interface CrashSuite {
  name: string;
  /** Fails (never skips) naming the Debian package of a missing program. */
  requires(): void;
  /** The agent config's `modules` (every module not named here is turned off). */
  modules(env: CrashEnv): Record<string, unknown>;
  /** Before the first agent start (e.g. a network namespace) and after the last stop. */
  before?(env: CrashEnv): Promise<void> | void;
  after?(env: CrashEnv): Promise<void> | void;
  /** After the first start: state every case keeps (another site that must stay served). */
  started?(h: CrashHost): Promise<void>;
  /** The host's state as the test reads it itself (files, service state), normalised. */
  snapshot(h: CrashHost): Promise<unknown>;
  cases: readonly CrashCase[];
}

/** Declares a suite (typed). */
export const crashSuite = (s: CrashSuite): CrashSuite => s;

/** A running (or restartable) sandbox agent seen through a panel connection manager. */
export class CrashHost implements CrashEnv {
  proc: AgentProcess | null = null;
  private killAt: string | null = null;
  readonly name: string;
  readonly hostId: string;
  readonly sandbox: string;
  readonly files: AgentFiles;
  readonly pki: TestPki;
  readonly port: number;

  constructor(
    env: CrashEnv,
    readonly manager: ConnectionManager,
    private readonly args: string[],
    private readonly command: [string, ...string[]],
  ) {
    this.name = env.name;
    this.hostId = env.hostId;
    this.sandbox = env.sandbox;
    this.files = env.files;
    this.pki = env.pki;
    this.port = env.port;
  }

  sb(rel: string): string {
    return path.join(this.sandbox, rel);
  }

  state(rel: string): string {
    return path.join(this.sandbox, 'var/lib/ponio-agent', rel);
  }

  /** (Re)starts the agent, armed to die at `killAt` (or never), and waits until the panel sees it. */
  async start(killAt: string | null): Promise<void> {
    this.killAt = killAt;
    await this.proc?.stop();
    // Online means this agent's hello (a stale status of the killed one must not count).
    let onHello: ((id: string) => void) | null = null;
    const greeted = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no hello from ${this.hostId} within 30 s`)), 30_000);
      onHello = (id) => {
        if (id !== this.hostId) return;
        clearTimeout(timer);
        resolve();
      };
      this.manager.on('hello', onHello);
    });
    try {
      this.proc = await spawnAgent(this.args, {
        env: { PONIO_TEST_KILL_AT: killAt ?? '' },
        timeoutMs: 60_000,
        command: this.command,
      });
      await greeted;
      await this.manager.waitForState(this.hostId, 'online', 30_000);
    } finally {
      if (onHello) this.manager.off('hello', onHello);
      greeted.catch(() => undefined);
    }
  }

  /** Restarts the agent armed as it is now (a setup that needs a fresh agent). */
  restart(): Promise<void> {
    return this.start(this.killAt);
  }

  get running(): boolean {
    const p = this.proc?.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  hello(): Hello | undefined {
    return this.manager.status(this.hostId)?.hello ?? undefined;
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
    for (let i = 0; i < 50 && p.exitCode === null && p.signalCode === null; i++) await sleep(20);
    return p.signalCode === 'SIGKILL';
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    this.proc = null;
  }
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

/** Atomic-write temp files anywhere under `root` (MariaDB's datadir is not PonIO's to write). */
async function tempFilesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < 12 && !p.endsWith('/var/lib/mysql-sandbox/data')) await walk(p, depth + 1);
      } else if (TEMP_FILE.test(e.name)) out.push(p);
    }
  };
  await walk(root, 0);
  return out;
}

/** A readable listing of a tree: `rel type mode uid:gid [-> target | sha256]`, sorted; `skip` prunes. */
export async function listTree(
  root: string,
  skip: (rel: string) => boolean = () => false,
): Promise<string[]> {
  const { createHash } = await import('node:crypto');
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

/** A process of this machine whose command line names the sandbox. */
interface SandboxProcess {
  pid: number;
  ppid: number;
  /** The program's base name (`node`, `apache2`, `mariadbd`, `proftpd`, …). */
  exe: string;
  argv: string[];
}

/** Every process whose command line names a path in `sandbox` (the agent and its services). */
export async function sandboxProcesses(sandbox: string): Promise<SandboxProcess[]> {
  const out: SandboxProcess[] = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await fsp.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(sandbox)) continue;
    const argv = cmdline.split('\0').filter(Boolean);
    const stat = await fsp.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Fields after the ")" of the command: state ppid …; a zombie has no command line left.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    out.push({ pid: Number(name), ppid, exe: comm || path.basename(argv[0] ?? ''), argv });
  }
  return out;
}

/**
 * One agent for the sandbox and one instance of each of its services: per program, the
 * processes whose parent runs another program (Apache's and proftpd's workers are their main
 * process's children and do not count).
 */
export async function instanceCounts(sandbox: string): Promise<Record<string, number>> {
  const procs = await sandboxProcesses(sandbox);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const counts: Record<string, number> = {};
  for (const p of procs) {
    if (byPid.get(p.ppid)?.exe === p.exe) continue;
    const key = p.exe === 'node' || p.argv.includes('serve') ? 'agent' : p.exe;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Stops every process still naming the sandbox (services a killed agent left), TERM then KILL. */
export async function stopSandboxProcesses(sandbox: string): Promise<void> {
  const signal = (sig: NodeJS.Signals): Promise<number> =>
    sandboxProcesses(sandbox).then((ps) => {
      for (const p of ps) {
        try {
          process.kill(p.pid, sig);
        } catch {
          /* gone */
        }
      }
      return ps.length;
    });
  if ((await signal('SIGTERM')) === 0) return;
  for (let i = 0; i < 300; i++) {
    if ((await sandboxProcesses(sandbox)).length === 0) return;
    await sleep(100);
  }
  await signal('SIGKILL');
}

/**
 * The checks that hold on the host after every restart, whatever the event: journal settled,
 * no temp file, modules available and their services running, one agent and one instance of
 * each service. Returns the problems (empty when all hold).
 */
export async function hostWideProblems(h: CrashHost, modules: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const name of await fsp.readdir(h.state('calls')).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const rec = JSON.parse(await fsp.readFile(h.state(`calls/${name}`), 'utf8')) as {
      state: string;
      event: string;
    };
    if (rec.state === 'running') problems.push(`journal: "${rec.event}" (${name}) is still running`);
  }
  for (const f of await tempFilesUnder(h.sandbox)) problems.push(`temp file left: ${f}`);
  for (const name of modules) {
    const m = h.hello()?.modules.find((x) => x.name === name);
    if (!m?.available) problems.push(`module ${name} not available: ${JSON.stringify(m)}`);
    else if (m.service && m.service.state !== 'running')
      problems.push(`module ${name}: its service is ${JSON.stringify(m.service)}`);
  }
  for (const [exe, n] of Object.entries(await instanceCounts(h.sandbox)))
    if (n !== 1) problems.push(`${n} instances of ${exe} for the sandbox`);
  return problems;
}

/** Polls until `check` gives no problem (services settle after a graceful reload). */
async function holds(what: string, check: () => Promise<string[]>): Promise<void> {
  let last: string[] = [];
  for (let i = 0; i < 40; i++) {
    last = await check();
    if (last.length === 0) return;
    await sleep(250);
  }
  assert.fail(`${what}:\n${last.join('\n')}`);
}

/** Polls `snapshot` until it equals one of `states`; returns which. */
async function settled(snapshot: () => Promise<unknown>, states: readonly unknown[]): Promise<number> {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    last = await snapshot();
    const k = states.findIndex((s) => isDeepStrictEqual(s, last));
    if (k >= 0) return k;
    await sleep(250);
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
  /** Retries with the killed call's requestId that were checked. */
  retries: number;
  /** Where the time went (seconds per phase), for the suite's diagnostics. */
  seconds: Record<string, number>;
}

type Phase = 'restart' | 'checks' | 'retries' | 'setup' | 'call';

/** What a killed call's requestId is worth after the restart (`call outcome`). */
type Outcome = ReplyData<'call outcome'>;

/**
 * The retry checks after one kill and restart (`k`: which whole state the host is in). `fresh`:
 * also retry an interrupted call that left nothing (once per case; it then runs and applies).
 * Returns how many retries were checked and whether the host was changed (it then needs the
 * setup again).
 */
async function checkRetries(
  h: CrashHost,
  c: CrashCase,
  snapshot: () => Promise<unknown>,
  whole: readonly unknown[],
  k: number,
  killed: { requestId: string; params: object },
  fresh: boolean,
): Promise<{ checked: number; changed: boolean }> {
  const { requestId } = killed;
  const same = { ...killed.params, requestId } as RequestIn<EventName>;
  const what = `${c.event} (requestId of a killed call)`;
  const outcome: Outcome = await h.ok('call outcome', { id: requestId });
  // The journal's word agrees with the host.
  if (outcome.state === 'done') {
    assert.ok(outcome.reply.ok, `${what}: the journal recorded ${JSON.stringify(outcome)}`);
    if (!c.restartReverts)
      assert.equal(k, 1, `${what}: the journal says done, the host does not have the change`);
  } else {
    assert.ok(
      outcome.state === 'absent' || outcome.state === 'unknown',
      `${what}: ${JSON.stringify(outcome)}`,
    );
    if (!c.startApplies)
      assert.notEqual(k, 1, `${what}: the host has the change, the journal says ${outcome.state}`);
  }
  let checked = 0;
  if (outcome.state !== 'unknown' && c.otherParams) {
    const r = await h.call(c.event, { ...(await c.otherParams(h)), requestId });
    assert.equal(
      !r.ok && r.error.code,
      'invalid-argument',
      `${what} with other parameters: ${JSON.stringify(r)}`,
    );
    assert.deepEqual(await snapshot(), whole[k], `${what} with other parameters changed the host`);
    checked++;
  }
  if (outcome.state === 'done') {
    // The change is in: the retry answers what the journal recorded and does not act again.
    const r = await h.call(c.event, same);
    assert.deepEqual(r, outcome.reply, `${what}: the retry answers the recorded reply`);
    assert.deepEqual(await snapshot(), whole[k], `${what}: a retry of an applied call acted again`);
    return { checked: checked + 1, changed: false };
  }
  if (fresh && k <= 1) {
    // Nothing of it is in: the retry runs it now, once.
    const r = await h.call(c.event, same);
    assert.ok(r.ok, `${what}: a retry of an undone call: ${JSON.stringify(r)}`);
    assert.deepEqual(await snapshot(), whole[1], `${what}: a retry of an undone call applies it`);
    const again = await h.call(c.event, same);
    assert.deepEqual(again, r, `${what}: a second retry answers the first one's reply`);
    assert.deepEqual(await snapshot(), whole[1], `${what}: a second retry acted again`);
    return { checked: checked + 2, changed: true };
  }
  return { checked, changed: false };
}

/**
 * Kills the agent at every step of one mutating event in turn and checks the host after each
 * restart (see the top of this file). The first run (never killed) learns the state after a
 * complete call.
 */
export async function killAtEveryStep(
  h: CrashHost,
  c: CrashCase,
  suiteSnapshot: (h: CrashHost) => Promise<unknown>,
  modules: readonly string[],
): Promise<KillResult> {
  const snapshot = (): Promise<unknown> => (c.snapshot ?? suiteSnapshot)(h);
  const ms: Record<Phase, number> = { restart: 0, checks: 0, retries: 0, setup: 0, call: 0 };
  const timed = async <T>(phase: Phase, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      ms[phase] += performance.now() - t0;
    }
  };
  if (!h.running) await h.start(null);
  const extra = (await c.setup(h)) ?? [];
  const before = await snapshot();
  await h.ok(c.event, await c.params(h));
  const after = await snapshot();
  const whole = [before, after, ...extra];
  assert.ok(!isDeepStrictEqual(before, after), `${c.event}: the call changes the snapshot`);
  const outcomes: ('absent' | 'applied')[] = [];
  let retries = 0;
  let needSetup = true;
  let last = { requestId: '', params: {} };
  let freshDone = false;
  for (let n = 1; n <= MAX_STEPS; n++) {
    const requestId = randomUUID();
    await timed('restart', () => h.start(`${requestId}:${n}`));
    if (n > 1) {
      const k = await timed('checks', async () => {
        const found = await settled(snapshot, whole);
        await holds(`${c.event}: host-wide checks after a kill at step ${n - 1}`, () =>
          hostWideProblems(h, modules),
        );
        return found;
      });
      outcomes.push(k === 1 ? 'applied' : 'absent');
      const r = await timed('retries', () => checkRetries(h, c, snapshot, whole, k, last, !freshDone));
      if (r.changed) freshDone = true;
      retries += r.checked;
      needSetup = k !== 0 || r.changed;
    }
    if (needSetup)
      await timed('setup', async () => {
        await c.setup(h);
        assert.deepEqual(await snapshot(), before, `${c.event}: setup restores the state before the call`);
      });
    last = { requestId, params: await c.params(h) };
    const r = await timed('call', async () => {
      const reply = await h.call(c.event, { ...last.params, requestId });
      return { reply, killed: await h.killed() };
    });
    if (!r.killed) {
      assert.ok(r.reply.ok, `${c.event} (no kill point ${n}): ${JSON.stringify(r.reply)}`);
      assert.deepEqual(await snapshot(), after, `${c.event}: a complete call gives the same state`);
      const seconds = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v / 100) / 10]));
      return { steps: n - 1, outcomes, retries, seconds };
    }
    assert.equal(
      !r.reply.ok && r.reply.error.code,
      'unavailable',
      `${c.event} at step ${n}: the agent died mid-call`,
    );
  }
  return assert.fail(`${c.event}: more than ${MAX_STEPS} kill points`);
}

/** The test name of a case (the guard test and the runner agree on it). */
export const caseTitle = (c: CrashCase): string =>
  `a kill at any step of "${c.event}"${c.label ? ` (${c.label})` : ''} leaves it fully applied or fully absent; a retry acts once`;

/**
 * Registers the suite's tests in the calling test file: one agent (and its private services) for
 * the whole file, kept up between cases; one test per case.
 */
export function runCrashSuite(suite: CrashSuite): void {
  let env: CrashEnv | null = null;
  let manager: ConnectionManager | null = null;
  let h: CrashHost | null = null;
  let modules: string[] = [];

  before(async () => {
    requireRoot(`the ${suite.name} crash test`);
    suite.requires();
    const pki = await makeTestPki();
    const hostId = `crash-${suite.name}`;
    const files = await pki.agent(hostId);
    const sandbox = tempDir(`ponio-crash-${suite.name}-`);
    const port = await agentPort();
    env = {
      name: suite.name,
      hostId,
      sandbox,
      files,
      pki,
      port,
      sb: (rel) => path.join(sandbox, rel),
      state: (rel) => path.join(sandbox, 'var/lib/ponio-agent', rel),
    };
    await suite.before?.(env);
    const own = suite.modules(env);
    modules = ['system', ...Object.keys(own).filter((k) => own[k] !== false)];
    const all = Object.fromEntries(
      MODULE_NAMES.filter((k) => k !== 'system').map((k) => [k, own[k] ?? false] as const),
    );
    const config = path.join(sandbox, 'agent.json');
    writeFileSync(config, JSON.stringify({ modules: { ...all, ...own } }));
    const command = await agentBundle();
    // Reconnects every 50-100 ms: a restarted agent is seen as soon as it listens.
    manager = new ConnectionManager({
      tls: () => ({ certPem: pki.panel.certPem, keyPem: pki.panel.keyPem, caPem: pki.ca.certPem }),
      logger: quietLogger,
      backoff: { minMs: 50, maxMs: 100 },
      connectTimeoutMs: 3000,
    });
    manager.add({ id: hostId, address: '127.0.0.1', port });
    h = new CrashHost(
      env,
      manager,
      [
        ...['--config', config, '--listen', `127.0.0.1:${port}`, '--sandbox', sandbox],
        ...['--cert', files.certFile, '--key', files.keyFile, '--ca', files.caFile],
      ],
      command,
    );
    await h.start(null);
    await suite.started?.(h);
  });

  after(async () => {
    await h?.stop();
    await manager?.close();
    if (env) {
      // A killed agent's services (and anything else naming the sandbox) go with it.
      await stopSandboxProcesses(env.sandbox);
      await suite.after?.(env);
      await fsp.rm(env.pki.dir, { recursive: true, force: true });
    }
  });

  for (const c of suite.cases) {
    test(caseTitle(c), async (t) => {
      assert.ok(h, 'the suite started');
      const r = await killAtEveryStep(h, c, (x) => suite.snapshot(x), modules);
      t.diagnostic(
        `${r.steps} kill points: ${r.outcomes.join(' ')}; ${r.retries} retries checked; seconds ${JSON.stringify(r.seconds)}`,
      );
      assert.ok(r.steps >= (c.minSteps ?? 2), `${c.event}: ${r.steps} kill points`);
      assert.equal(r.outcomes.length, r.steps);
    });
  }
}
