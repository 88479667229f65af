import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { isEventName } from '../shared/protocol/index.ts';
import { loadPanelConfig, PanelConfigError } from './config.ts';
import { openDatabase, type Db } from './db/database.ts';
import { AuditLog, type Actor } from './db/audit.ts';
import { HostsRepo } from './db/hosts.ts';
import { HostLabelsRepo } from './db/labels.ts';
import { PanelHttpError } from './http/errors.ts';
import { setHostLabels } from './hosts/labels.ts';
import { checkJobRequest } from './jobs/request.ts';
import { paramsFromText } from './jobs/params.ts';
import { JobsStore, type JobRow } from './jobs/store.ts';
import { hostResultJson, jobJson } from './jobs/views.ts';
import { formatLabels } from '../shared/validate/labels.ts';
import type { JobTarget } from './jobs/spec.ts';

type Flags = Record<string, string | boolean | string[] | undefined>;

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

const str = (o: Flags, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);

function openDb(o: Flags): Db {
  try {
    const cfg = loadPanelConfig({ config: str(o, 'config'), dataDir: str(o, 'dataDir') });
    return openDatabase(path.join(cfg.dataDir, 'panel.db'));
  } catch (e) {
    if (e instanceof PanelConfigError) throw new CliError(e.message);
    throw e;
  }
}

const cliActor = (): Actor => ({ kind: 'cli', name: `cli:${os.userInfo().username}`, role: 'admin' });

const dataOptions = (c: Command): Command =>
  c
    .option('--config <file>', 'panel JSON config file')
    .option('--data-dir <dir>', 'panel data directory (default ./data, or PONIO_PANEL_DATA_DIR)');

/** Runs a command body; CliError and PanelHttpError become one line on stderr and the exit code. */
function run(fn: (o: Flags, ...args: string[]) => Promise<number | void> | number | void) {
  return async (...args: unknown[]): Promise<void> => {
    const o = (args[args.length - 2] ?? {}) as Flags;
    const positional = args
      .slice(0, -2)
      .flat()
      .filter((a): a is string => typeof a === 'string');
    try {
      const code = await fn(o, ...positional);
      if (typeof code === 'number') process.exitCode = code;
    } catch (e) {
      if (e instanceof CliError || e instanceof PanelHttpError) {
        process.stderr.write(`ponio-panel: ${e.message}\n`);
        process.exitCode = e instanceof CliError ? e.exitCode : e.status === 404 ? 1 : 2;
        return;
      }
      throw e;
    }
  };
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const list = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

/** --target 'role=web,dc!=fra' | all, --hosts, --module, --exclude → a job target. */
function targetFrom(o: Flags): JobTarget {
  const t: JobTarget = {};
  const target = str(o, 'target');
  if (target === 'all') t.all = true;
  else if (target !== undefined) t.selector = target;
  const hosts = list(str(o, 'hosts'));
  if (hosts) t.hosts = hosts;
  const module = str(o, 'module');
  if (module) (t as Record<string, unknown>).module = module;
  const exclude = list(str(o, 'exclude'));
  if (exclude) t.exclude = exclude;
  return t;
}

function hostLine(h: ReturnType<typeof hostResultJson>): string {
  const what =
    h.state === 'ok'
      ? 'ok'
      : `${h.state}${h.errorCode ? ` (${h.errorCode})` : ''}${h.message ? `: ${h.message}` : ''}`;
  const ms = h.durationMs === null ? '' : ` ${h.durationMs} ms`;
  return `${h.hostName.padEnd(24)} ${what}${ms}`;
}

/** Every host succeeded (a dry run: every host would run). */
const allSucceeded = (j: JobRow, store: JobsStore): boolean => {
  const c = store.counts(j.id);
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  if (j.state !== 'done' || total === 0) return false;
  if (j.dry_run === 1)
    return store.hosts(j.id).every((h) => h.state === 'skipped' && h.error_code === 'dry-run');
  return c.ok === total;
};

/** Prints each host as it finishes and the recap; resolves with the exit code (0: every host succeeded). */
async function follow(db: Db, id: number, json: boolean): Promise<number> {
  const store = new JobsStore(db);
  const printed = new Set<number>();
  let noted = false;
  const started = Date.now();
  for (;;) {
    const j = store.get(id);
    if (!j) throw new CliError(`job ${id} disappeared`, 1);
    if (!json)
      for (const h of store.hosts(id)) {
        if (printed.has(h.seq) || h.state === 'pending' || h.state === 'running') continue;
        printed.add(h.seq);
        out(hostLine(hostResultJson(h)));
      }
    if (j.state !== 'queued' && j.state !== 'running') {
      const view = jobJson(j, store.counts(id));
      if (json) out(JSON.stringify({ ...view, hosts: store.hosts(id).map(hostResultJson) }));
      else {
        out('');
        out(`job ${id} ${j.state}: ${view.recap}`);
        if (j.message && !j.message.endsWith(view.recap)) out(j.message);
      }
      return allSucceeded(j, store) ? 0 : 1;
    }
    if (j.state === 'queued' && !noted && Date.now() - started > 5_000) {
      noted = true;
      process.stderr.write(
        `ponio-panel: job ${id} is queued; it starts when a panel (ponio-panel serve) claims it.\n`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function jobIdArg(v: string): number {
  if (!/^\d{1,12}$/.test(v)) throw new CliError('a job id is a number (see ponio-panel job list)');
  return Number(v);
}

/**
 * `ponio-panel job run|list|show|cancel|retry|resume` and `ponio-panel host label` (issue 19).
 * They work on the panel's database: `job run` queues the job, checked once (event, params
 * against its schema, target, settings), and the running panel claims and runs it (it holds the
 * agent connections and knows each host's hello); `--wait` follows it host by host.
 */
export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('run one event on many hosts (docs/jobs.md)');
  dataOptions(
    job
      .command('run <event>')
      .description('queue a job for the running panel; --wait prints each host and the recap')
      .option('--target <selector>', "label selector (role=web,dc!=fra) or 'all'")
      .option('--hosts <list>', 'host ids or names, comma-separated')
      .option('--module <module>', 'only hosts whose agent offers this module')
      .option('--exclude <list>', 'host ids or names to leave out, comma-separated')
      .option('--param <key=value>', 'an event parameter (repeatable)', collect)
      .option('--params-json <json>', 'all event parameters as one JSON object')
      .option('--batch <n|n%>', 'hosts in flight at once (default 10)')
      .option('--pause <seconds>', 'pause between two host starts')
      .option(
        '--fail-threshold <n|n%>',
        'stop starting hosts once this many failed, were unreachable or timed out',
      )
      .option('--deadline <seconds>', 'per-host deadline')
      .option('--dry-run', 'validate and check capabilities only')
      .option('--wait', 'follow the job; exit 0 only if every host succeeded')
      .addOption(new Option('--json', 'JSON output (with --wait: the whole job at the end)')),
  ).action(
    run(async (o, event) => {
      if (!isEventName(event))
        throw new CliError(`${JSON.stringify(event)} is not an event (docs/protocol.md lists them)`);
      const pairs: Record<string, string> = {};
      for (const p of (o.param as string[] | undefined) ?? []) {
        const eq = p.indexOf('=');
        if (eq <= 0) throw new CliError(`--param ${JSON.stringify(p)}: write key=value`);
        pairs[p.slice(0, eq)] = p.slice(eq + 1);
      }
      let params: Record<string, unknown> = {};
      const pj = str(o, 'paramsJson');
      if (pj !== undefined) {
        try {
          params = JSON.parse(pj) as Record<string, unknown>;
        } catch {
          throw new CliError('--params-json is not valid JSON');
        }
      }
      const fromText = paramsFromText(event, pairs);
      if (!fromText.ok) throw new CliError(fromText.message);
      params = { ...params, ...fromText.params };
      const num = (k: string, flag: string): number | undefined => {
        const v = str(o, k);
        if (v === undefined) return undefined;
        if (!/^\d+(\.\d+)?$/.test(v)) throw new CliError(`${flag} is a number of seconds`);
        return Number(v);
      };
      const amount = (v: string | undefined): string | undefined => v;
      const body = {
        event,
        params,
        target: targetFrom(o),
        ...(str(o, 'batch') !== undefined ? { window: amount(str(o, 'batch')) } : {}),
        ...(num('pause', '--pause') !== undefined ? { pauseSeconds: num('pause', '--pause') } : {}),
        ...(str(o, 'failThreshold') !== undefined ? { failThreshold: str(o, 'failThreshold') } : {}),
        ...(num('deadline', '--deadline') !== undefined
          ? { deadlineSeconds: num('deadline', '--deadline') }
          : {}),
        dryRun: o.dryRun === true,
      };
      const actor = cliActor();
      const c = checkJobRequest(actor, body);
      if (c.hasSecrets)
        throw new CliError(
          `"${event}" carries a secret; the panel never stores secrets, so queue it through the API or the dashboard instead`,
        );
      const db = openDb(o);
      try {
        const hosts = new HostsRepo(db);
        for (const ref of [...(c.target.hosts ?? []), ...(c.target.exclude ?? [])])
          if (!hosts.get(ref) && !hosts.getByName(ref))
            throw new CliError(`no host with the id or name ${JSON.stringify(ref)}`, 1);
        const store = new JobsStore(db);
        const id = store.create({
          createdBy: actor.name,
          actor,
          event: c.event,
          params: c.params,
          hasSecrets: false,
          target: c.target,
          settings: c.settings,
          dryRun: c.dryRun,
          hosts: null,
        });
        new AuditLog(db).write({
          actor,
          hostId: null,
          action: 'job queue',
          params: {
            job: id,
            event: c.event,
            params: c.params,
            target: c.target,
            ...c.settings,
            dryRun: c.dryRun,
          },
          ok: true,
          jobId: id,
        });
        if (o.wait !== true) {
          out(o.json === true ? JSON.stringify({ id }) : `job ${id} queued`);
          return 0;
        }
        if (o.json !== true) out(`job ${id}: ${c.event} (window ${c.settings.window})`);
        return await follow(db, id, o.json === true);
      } finally {
        db.close();
      }
    }),
  );

  dataOptions(job.command('list').description('recent jobs').option('--json', 'JSON output')).action(
    run((o) => {
      const db = openDb(o);
      try {
        const store = new JobsStore(db);
        const rows = store.list({ limit: 50 }).rows.map((j) => jobJson(j, store.counts(j.id)));
        if (o.json === true) out(JSON.stringify(rows));
        else
          for (const j of rows)
            out(`${String(j.id).padEnd(6)} ${j.state.padEnd(12)} ${j.event.padEnd(24)} ${j.recap}`);
      } finally {
        db.close();
      }
    }),
  );

  dataOptions(
    job.command('show <id>').description('a job and its per-host results').option('--json', 'JSON output'),
  ).action(
    run((o, idArg) => {
      const id = jobIdArg(idArg ?? '');
      const db = openDb(o);
      try {
        const store = new JobsStore(db);
        const j = store.get(id);
        if (!j) throw new CliError(`no job ${id}`, 1);
        const view = jobJson(j, store.counts(id));
        const hosts = store.hosts(id).map(hostResultJson);
        if (o.json === true) {
          out(JSON.stringify({ ...view, hosts }));
          return allSucceeded(j, store) ? 0 : 1;
        }
        out(`job ${id}: ${j.event} ${j.state}${j.message ? ` — ${j.message}` : ''}`);
        for (const h of hosts) out(hostLine(h));
        out('');
        out(view.recap);
        return allSucceeded(j, store) ? 0 : 1;
      } finally {
        db.close();
      }
    }),
  );

  for (const action of ['cancel', 'retry', 'resume'] as const)
    dataOptions(
      job
        .command(`${action} <id>`)
        .description(
          action === 'cancel'
            ? 'cancel a job: no new host starts'
            : action === 'retry'
              ? 'queue the failed, unreachable and timed-out hosts again'
              : 'queue the hosts an interrupted, stopped or cancelled job never started',
        ),
    ).action(
      run((o, idArg) => {
        const id = jobIdArg(idArg ?? '');
        const db = openDb(o);
        try {
          const store = new JobsStore(db);
          const j = store.get(id);
          if (!j) throw new CliError(`no job ${id}`, 1);
          const actor = cliActor();
          if (action === 'cancel') {
            if (j.state === 'running') store.requestCancel(id);
            else if (!store.cancelIdle(id))
              throw new CliError(`job ${id} is ${j.state}; only a queued or running job can be cancelled`, 1);
          } else {
            if (j.has_secrets === 1)
              throw new CliError(
                `job ${id} had a secret parameter, which is never stored; start a new job`,
                1,
              );
            const n = store.requeue(
              id,
              actor,
              action === 'retry'
                ? { states: ['failed', 'unreachable', 'timeout'] }
                : { states: ['pending'], skipReasons: ['threshold', 'cancelled'] },
              () => crypto.randomUUID(),
            );
            if (n < 0) throw new CliError(`job ${id} is ${j.state}; wait until it ends`, 1);
            if (n === 0) throw new CliError(`job ${id} has no host to ${action}`, 1);
          }
          new AuditLog(db).write({
            actor,
            hostId: null,
            action: `job ${action}`,
            params: { job: id },
            ok: true,
            jobId: id,
          });
          out(`job ${id}: ${action === 'cancel' ? 'cancel requested' : 'queued again'}`);
        } finally {
          db.close();
        }
      }),
    );

  // Labels belong to hosts: `ponio-panel host label <host> role=web dc=ams` (no pairs: show them).
  const host = program.commands.find((c) => c.name() === 'host');
  if (!host) throw new Error('register the host commands first');
  dataOptions(
    host
      .command('label <host> [labels...]')
      .description("replace a host's labels (key=value …); --clear removes them; none given: show them")
      .option('--clear', 'remove every label'),
  ).action(
    run((o, ref, ...pairs) => {
      const db = openDb(o);
      try {
        const hosts = new HostsRepo(db);
        const labels = new HostLabelsRepo(db);
        const h = hosts.get(ref ?? '') ?? hosts.getByName(ref ?? '');
        if (!h) throw new CliError(`no host with the id or name ${JSON.stringify(ref)}`, 1);
        if (pairs.length === 0 && o.clear !== true) {
          out(formatLabels(labels.get(h.id)) || '(no labels)');
          return;
        }
        const r = setHostLabels(
          { hosts, labels, audit: new AuditLog(db) },
          cliActor(),
          h.id,
          o.clear === true ? '' : pairs.join(' '),
        );
        out(`${h.name}: ${formatLabels(r.labels) || '(no labels)'}`);
      } finally {
        db.close();
      }
    }),
  );
}
