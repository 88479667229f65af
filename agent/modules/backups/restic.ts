import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { execPipe, type Exec, type PipeSide } from '../../os/exec.ts';
import { RepoLock } from './repo-lock.ts';
import type { BackupRepository } from './settings.ts';

const SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const snapshotRow = z.looseObject({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  short_id: z.string(),
  time: z.string(),
  hostname: z.string().optional(),
  paths: z.array(z.string()).nullable().optional(),
  tags: z.array(z.string()).nullable().optional(),
});
export type ResticSnapshot = z.infer<typeof snapshotRow>;

const summaryRow = z.looseObject({
  message_type: z.literal('summary'),
  snapshot_id: z.string(),
  total_bytes_processed: z.number(),
  data_added: z.number(),
});
export interface BackupSummary {
  id: string;
  sizeBytes: number;
  addedBytes: number;
}

/** The last lines of restic's standard error, for an admin (restic never prints the password). */
const tail = (text: string, lines = 6): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^\[\d+:\d+\]/.test(l))
    .slice(-lines)
    .join(' ')
    .slice(0, 1500);

/** What a failed restic run means for the admin. */
export function resticError(what: string, stderr: string): RpcError {
  const t = tail(stderr);
  if (/wrong password|no key found/i.test(t))
    return new RpcError(
      'failed-precondition',
      `${what}: the repository does not open with this host's backup password (restic: ${t}). Nothing was changed.`,
    );
  if (/unable to open config file|Is there a repository/i.test(t))
    return new RpcError(
      'failed-precondition',
      `${what}: there is no readable restic repository at the configured location (restic: ${t}). Nothing was changed.`,
    );
  if (/already locked/i.test(t))
    return new RpcError(
      'unavailable',
      `${what}: the repository is locked by another restic process (restic: ${t}). Nothing was changed; try again later.`,
    );
  return new RpcError(
    'failed-precondition',
    `${what} failed (restic: ${t || 'no output'}). Nothing was changed.`,
  );
}

function parseSummary(stdout: string): BackupSummary | null {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i];
    if (l === undefined || !l.includes('"summary"')) continue;
    try {
      const s = summaryRow.parse(JSON.parse(l));
      return { id: s.snapshot_id, sizeBytes: s.total_bytes_processed, addedBytes: s.data_added };
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * The host's restic repository (design: existing engines, not home-made archives). Every run
 * gets the repository and the password file through the environment (RESTIC_REPOSITORY,
 * RESTIC_PASSWORD_FILE): the password is never on a command line, in a reply or in a log.
 * Runs that only add or read (backup, restore, dump, snapshots) share the repository; forget,
 * prune, check and unlock take it alone (restic's own locks would make them fail otherwise).
 */
export class Restic {
  private ready: Promise<void> | null = null;
  /** The last listing of a local repository, and the snapshot files it was made from. */
  private listed: { key: string; rows: ResticSnapshot[] } | null = null;
  readonly lock = new RepoLock();

  constructor(
    private readonly repo: BackupRepository,
    private readonly exec: Exec,
    private readonly cacheDir: string,
    readonly hostTag: string,
  ) {}

  env(): NodeJS.ProcessEnv {
    return {
      PATH: SEARCH_PATH,
      LANG: 'C',
      LC_ALL: 'C',
      HOME: this.cacheDir,
      RESTIC_REPOSITORY: this.repo.location,
      RESTIC_PASSWORD_FILE: this.repo.passwordFile,
      RESTIC_CACHE_DIR: this.cacheDir,
      ...this.repo.env,
    };
  }

  private run(args: readonly string[], opts: { cwd?: string; timeoutMs?: number; maxBuffer?: number } = {}) {
    return this.exec('restic', args, {
      env: this.env(),
      timeoutMs: opts.timeoutMs ?? 3_600_000,
      maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
  }

  /** Whether the repository exists (no restic run for a local one). */
  async initialized(): Promise<boolean> {
    if (this.repo.local)
      return fsp.stat(path.join(this.repo.location, 'config')).then(
        () => true,
        () => false,
      );
    return (await this.run(['cat', 'config', '--no-lock'], { timeoutMs: 60_000 })).code === 0;
  }

  /**
   * Creates the repository on first use, and clears stale locks of a killed agent (restic
   * unlock removes only locks whose process is gone).
   */
  ensure(): Promise<void> {
    this.ready ??= (async () => {
      if (!(await this.initialized())) {
        if (this.repo.local) await fsp.mkdir(this.repo.location, { recursive: true, mode: 0o700 });
        const r = await this.run(['init'], { timeoutMs: 120_000 });
        if (r.code !== 0) throw resticError('Creating the backup repository', r.stderr);
      }
      await this.lock.exclusive(async () => {
        const u = await this.run(['unlock'], { timeoutMs: 120_000 });
        if (u.code !== 0) throw resticError('Opening the backup repository', u.stderr);
      });
    })();
    const p = this.ready;
    p.catch(() => {
      if (this.ready === p) this.ready = null;
    });
    return p;
  }

  /**
   * The repository's snapshots. A local repository's listing is kept while its `snapshots/`
   * directory holds the same files (one file per snapshot, named by its id): a restore or a
   * listing then costs no restic run (each one derives the key from the password again).
   */
  async snapshots(): Promise<ResticSnapshot[]> {
    if (!(await this.initialized())) return [];
    await this.ensure();
    const key = this.repo.local
      ? (await fsp.readdir(path.join(this.repo.location, 'snapshots')).catch(() => [] as string[]))
          .sort()
          .join(',')
      : null;
    if (key !== null && this.listed?.key === key) return this.listed.rows;
    const r = await this.lock.shared(() => this.run(['snapshots', '--json', '--no-lock']));
    if (r.code !== 0) throw resticError('Listing the snapshots', r.stderr);
    let rows: unknown;
    try {
      rows = JSON.parse(r.stdout || '[]');
    } catch {
      throw new RpcError('failed-precondition', 'restic listed the snapshots in a form PonIO cannot read.');
    }
    const parsed = z.array(snapshotRow).parse(rows ?? []);
    this.listed = key !== null ? { key, rows: parsed } : null;
    return parsed;
  }

  /** Backs up `paths` (relative to `cwd`, so the snapshot holds them by their own names). */
  async backup(cwd: string, paths: readonly string[], tags: readonly string[]): Promise<BackupSummary> {
    await this.ensure();
    const args = [
      'backup',
      '--json',
      '--host',
      this.hostTag,
      ...tags.flatMap((t) => ['--tag', t]),
      '--',
      ...paths,
    ];
    const r = await this.lock.shared(() => this.run(args, { cwd }));
    const s = r.code === 0 ? parseSummary(r.stdout) : null;
    if (!s) throw resticError('The backup', r.stderr);
    return s;
  }

  /** Streams a producer's output (a database dump) into one file of a new snapshot. */
  async backupStdin(producer: PipeSide, filename: string, tags: readonly string[]): Promise<BackupSummary> {
    await this.ensure();
    const args = [
      'backup',
      '--json',
      '--host',
      this.hostTag,
      '--stdin',
      '--stdin-filename',
      filename,
      ...tags.flatMap((t) => ['--tag', t]),
    ];
    const r = await this.lock.shared(() =>
      execPipe(producer, { bin: 'restic', args, env: this.env() }, { timeoutMs: 3_600_000 }),
    );
    const s = r.consumer.code === 0 ? parseSummary(r.consumer.stdout) : null;
    if (r.producer.code !== 0) {
      // restic saw the end of a cut-off dump: that snapshot must not stay.
      if (s) await this.forget([s.id]).catch(() => undefined);
      throw new RpcError(
        'failed-precondition',
        `${producer.bin} failed: ${tail(r.producer.stderr) || `exit ${r.producer.code}`}. No snapshot was kept.`,
      );
    }
    if (!s) throw resticError('The backup', r.consumer.stderr);
    return s;
  }

  /** Restores a whole snapshot under `target`. */
  async restore(id: string, target: string): Promise<void> {
    await this.ensure();
    const r = await this.lock.shared(() => this.run(['restore', id, '--target', target]));
    if (r.code !== 0) throw resticError('Reading the snapshot', r.stderr);
  }

  /** Streams one file of a snapshot into a consumer (the database client). */
  async dumpInto(id: string, file: string, consumer: PipeSide): Promise<void> {
    await this.ensure();
    const r = await this.lock.shared(() =>
      execPipe({ bin: 'restic', args: ['dump', id, file], env: this.env() }, consumer, {
        timeoutMs: 3_600_000,
      }),
    );
    if (r.producer.code !== 0) throw resticError('Reading the snapshot', r.producer.stderr);
    if (r.consumer.code !== 0)
      throw new RpcError(
        'failed-precondition',
        `${consumer.bin} refused the dump: ${tail(r.consumer.stderr) || `exit ${r.consumer.code}`}.`,
      );
  }

  async forget(ids: readonly string[], prune = false): Promise<void> {
    if (ids.length === 0) return;
    await this.ensure();
    const r = await this.lock.exclusive(() =>
      this.run(['forget', ...(prune ? ['--prune'] : []), '--', ...ids]),
    );
    if (r.code !== 0) throw resticError('Removing snapshots', r.stderr);
  }

  /** `restic forget --prune` with a keep policy over the snapshots with `tag`, per tag set. */
  async forgetPolicy(tag: string, keep: { daily: number; weekly: number; monthly: number }): Promise<number> {
    await this.ensure();
    const args = [
      'forget',
      '--json',
      '--prune',
      '--tag',
      tag,
      '--group-by',
      'tags',
      '--keep-daily',
      String(keep.daily),
      '--keep-weekly',
      String(keep.weekly),
      '--keep-monthly',
      String(keep.monthly),
    ];
    const r = await this.lock.exclusive(() => this.run(args));
    if (r.code !== 0) throw resticError('Applying the retention', r.stderr);
    // The JSON document is the first line; prune's own report follows it.
    const first = r.stdout.split('\n').find((l) => l.startsWith('['));
    try {
      const groups = z
        .array(z.looseObject({ remove: z.array(z.unknown()).nullable() }))
        .parse(JSON.parse(first ?? '[]'));
      return groups.reduce((n, g) => n + (g.remove?.length ?? 0), 0);
    } catch {
      return 0;
    }
  }

  async prune(): Promise<void> {
    await this.ensure();
    const r = await this.lock.exclusive(() => this.run(['prune']));
    if (r.code !== 0) throw resticError('Pruning the repository', r.stderr);
  }

  /** `restic check`: ok, or restic's own words on what is wrong. */
  async check(): Promise<{ ok: boolean; output: string }> {
    await this.ensure();
    const r = await this.lock.exclusive(() => this.run(['check']));
    return { ok: r.code === 0, output: tail(`${r.stdout}\n${r.stderr}`, 8) };
  }
}
