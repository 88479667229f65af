import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData, RequestOf } from '../../../shared/protocol/index.ts';
import type { BackupSettings, RunResult, Snapshot } from '../../../shared/protocol/events/backups.ts';
import { killPoint } from '../../journal/kill-point.ts';
import type { BackupSource, ChangeContext } from '../types.ts';
import type { BackupSummary, Restic, ResticSnapshot } from './restic.ts';
import { result, type BackupState, type StateFile } from './state.ts';

export type Kind = 'site' | 'database';
export type Reason = 'manual' | 'scheduled' | 'trash' | 'pre-restore';

/** The tags of a snapshot: what it is of, and whether the retention or the trash period keeps it. */
export const RETAINED_TAG = 'ponio';
export const TRASH_TAG = 'ponio-trash';
const kindTag = (kind: Kind, name: string): string => `${kind === 'site' ? 'site' : 'db'}=${name}`;

/**
 * The directory that holds a site snapshot's metadata (manifest, vhost, FTP lines), made in the
 * web root next to the tree: restic keeps relative paths from the working directory, so both
 * are top-level entries of the snapshot. Never a valid domain (leading dot).
 */
export const META_PREFIX = '.ponio-meta-';
export const isMetaDir = (name: string): boolean => /^\.ponio-meta-[0-9a-f]{12}$/.test(name);

export interface SiteManifest {
  format: 1;
  kind: 'site';
  domain: string;
  /** The tree's directory name in the snapshot. */
  tree: string;
  vhost: boolean;
  ftpUsers: number;
}

export interface Described {
  kind: Kind;
  name: string;
  trash: boolean;
}

/** What a snapshot of PonIO's is of (null for snapshots PonIO did not take). */
export function describe(s: ResticSnapshot): Described | null {
  const tags = s.tags ?? [];
  const trash = tags.includes(TRASH_TAG);
  if (!trash && !tags.includes(RETAINED_TAG)) return null;
  for (const t of tags) {
    const m = /^(site|db)=(.+)$/.exec(t);
    if (m?.[1] && m[2]) return { kind: m[1] === 'site' ? 'site' : 'database', name: m[2], trash };
  }
  return null;
}

/** The database dump's file name inside a snapshot. */
export const dumpFile = (name: string): string => `/${name}.sql`;

/**
 * Backups of one host into its restic repository: sites (their tree, vhost and FTP accounts,
 * as the websites and ftp modules name them) and databases (mariadb-dump --single-transaction
 * streamed into restic). The restore paths are in restore-site.ts and restore-database.ts.
 */
export class BackupService {
  constructor(
    readonly restic: Restic,
    readonly state: StateFile,
    readonly sources: () => BackupSource,
    readonly logger: Logger,
  ) {}

  private record(s: BackupState, sum: BackupSummary, reason: Reason): void {
    s.snapshots[sum.id] = { reason, sizeBytes: sum.sizeBytes, addedBytes: sum.addedBytes };
  }

  /** Backs up one site; the snapshot's short id. */
  async backupSite(domain: string, reason: Reason): Promise<string> {
    const src = this.sources();
    if (!src.sites) throw new RpcError('unsupported', 'The websites module is not available on this host.');
    const files = await src.sites.files(domain);
    if (!files) throw new RpcError('not-found', `There is no website ${domain} on this host.`);
    const cwd = path.dirname(files.tree);
    const meta = path.join(cwd, `${META_PREFIX}${opKey()}`);
    try {
      await fsp.mkdir(meta, { mode: 0o700 });
      if (files.vhost) await fsp.copyFile(files.vhost, path.join(meta, 'vhost.conf'));
      // The PHP-FPM pool (for the record: a restore renders it again from the vhost's header).
      for (const [i, f] of files.extra.entries())
        await fsp.copyFile(f, path.join(meta, `extra-${i}-${path.basename(f)}`));
      const ftp = src.ftp ? await src.ftp.usersUnder(files.tree) : [];
      if (ftp.length > 0)
        await fsp.writeFile(path.join(meta, 'ftp-users'), `${ftp.join('\n')}\n`, { mode: 0o600 });
      const manifest: SiteManifest = {
        format: 1,
        kind: 'site',
        domain,
        tree: path.basename(files.tree),
        vhost: files.vhost !== null,
        ftpUsers: ftp.length,
      };
      await fsp.writeFile(path.join(meta, 'manifest.json'), JSON.stringify(manifest), { mode: 0o600 });
      const tree = await fsp.stat(files.tree).then(
        (st) => st.isDirectory(),
        () => false,
      );
      // Relative paths from the web root: the snapshot holds `<domain>/` and `.ponio-meta-<key>/`.
      const paths = [...(tree ? [path.basename(files.tree)] : []), path.basename(meta)];
      const sum = await this.restic.backup(cwd, paths, this.tags('site', domain, reason));
      await this.state.update((s) => this.record(s, sum, reason));
      this.logger.info({ domain, snapshot: sum.id, reason }, 'site backed up');
      return sum.id;
    } finally {
      await fsp.rm(meta, { recursive: true, force: true });
    }
  }

  /** Backs up one database (a consistent dump streamed into restic); the snapshot's short id. */
  async backupDatabase(name: string, reason: Reason): Promise<string> {
    const db = this.sources().databases;
    if (!db) throw new RpcError('unsupported', 'The mysql module is not available on this host.');
    if (!(await db.databases()).includes(name))
      throw new RpcError('not-found', `There is no database ${name} on this host.`);
    const client = await db.clientArgs();
    try {
      const sum = await this.restic.backupStdin(
        {
          bin: 'mariadb-dump',
          args: [
            ...client.args,
            '--single-transaction',
            '--quick',
            '--routines',
            '--triggers',
            '--events',
            '--hex-blob',
            '--default-character-set=utf8mb4',
            '--',
            name,
          ],
        },
        dumpFile(name),
        this.tags('database', name, reason),
      );
      await this.state.update((s) => this.record(s, sum, reason));
      this.logger.info({ database: name, snapshot: sum.id, reason }, 'database backed up');
      return sum.id;
    } finally {
      await client.done();
    }
  }

  private tags(kind: Kind, name: string, reason: Reason): string[] {
    return [reason === 'trash' ? TRASH_TAG : RETAINED_TAG, kindTag(kind, name)];
  }

  /** `back up`: the named sites and databases, or all of them; each snapshot journaled as made. */
  async backUp(
    req: RequestOf<'back up'>,
    ctx: ChangeContext,
    trigger: RunResult['trigger'] = 'manual',
  ): Promise<ReplyData<'back up'>> {
    const src = this.sources();
    const everything = req.sites === undefined && req.databases === undefined;
    const sites = req.sites ?? (everything && src.sites ? await src.sites.sites() : []);
    const dbs = req.databases ?? (everything && src.databases ? await src.databases.databases() : []);
    const made: { kind: Kind; name: string; snapshot: string }[] = [];
    // Recovery removes this host's retained snapshots taken from `since` on (the module's own
    // operations run one at a time, so they are this run's).
    await ctx.intent({ op: 'back up', since: new Date().toISOString() });
    try {
      for (const [kind, names] of [
        ['site', sites],
        ['database', dbs],
      ] as const) {
        for (const name of names) {
          ctx.progress(`Backing up the ${kind} ${name}`);
          const id =
            kind === 'site' ? await this.backupSite(name, trigger) : await this.backupDatabase(name, trigger);
          made.push({ kind, name, snapshot: id });
          killPoint();
        }
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      await this.state.update((s) => {
        s.lastBackup = result(false, msg, trigger);
      });
      // All or nothing: the snapshots this run made go again.
      await this.restic.forget(made.map((m) => m.snapshot)).catch(() => undefined);
      throw e;
    }
    const message =
      made.length === 0
        ? 'Nothing to back up: there are no sites or databases.'
        : `Backed up ${made.length} item(s): ${made.map((m) => m.name).join(', ')}.`;
    await this.state.update((s) => {
      s.lastBackup = result(true, message, trigger);
      if (trigger === 'scheduled') s.lastScheduled = new Date().toISOString();
    });
    return { snapshots: made };
  }

  /** The listing of `list backups`. */
  async list(req: RequestOf<'list backups'>, location: string): Promise<ReplyData<'list backups'>> {
    const [snaps, st, initialized] = await Promise.all([
      this.restic.snapshots(),
      this.state.read(),
      this.restic.initialized(),
    ]);
    const out: Snapshot[] = [];
    for (const s of snaps) {
      const d = describe(s);
      if (!d) continue;
      if (req.kind !== undefined && d.kind !== req.kind) continue;
      if (req.name !== undefined && d.name !== req.name) continue;
      const facts = st.snapshots[s.short_id] ?? st.snapshots[s.id];
      const expires = d.trash ? new Date(Date.parse(s.time) + st.settings.trashDays * 86_400_000) : null;
      out.push({
        id: s.id,
        shortId: s.short_id,
        time: s.time,
        kind: d.kind,
        name: d.name,
        reason: d.trash ? 'trash' : (facts?.reason ?? 'manual'),
        sizeBytes: facts?.sizeBytes ?? null,
        addedBytes: facts?.addedBytes ?? null,
        expiresAt: expires ? expires.toISOString() : null,
      });
    }
    out.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    return {
      repository: location,
      initialized,
      settings: st.settings,
      lastBackup: st.lastBackup,
      lastPrune: st.lastPrune,
      lastCheck: st.lastCheck,
      nextBackupAt: nextBackupAt(st),
      snapshots: out,
    };
  }

  /** Undoes a `back up` a killed agent left: the retained snapshots it made go. */
  async forgetSince(since: string): Promise<void> {
    const from = Date.parse(since);
    const ids = (await this.restic.snapshots())
      .filter(
        (s) =>
          s.hostname === this.restic.hostTag && describe(s)?.trash === false && Date.parse(s.time) >= from,
      )
      .map((s) => s.id);
    await this.restic.forget(ids);
  }

  /** Finds one of PonIO's snapshots by its short or full id. */
  async find(id: string): Promise<{ snap: ResticSnapshot; what: Described }> {
    const snaps = await this.restic.snapshots();
    const hits = snaps.filter((s) => s.id.startsWith(id));
    if (hits.length > 1)
      throw new RpcError(
        'invalid-argument',
        `The snapshot id ${id} matches several snapshots; give more digits.`,
      );
    const snap = hits[0];
    const what = snap ? describe(snap) : null;
    if (!snap || !what)
      throw new RpcError('not-found', `There is no PonIO snapshot ${id} in this host's repository.`);
    return { snap, what };
  }

  async setSettings(
    req: { [K in keyof BackupSettings]?: BackupSettings[K] | undefined },
    ctx: ChangeContext,
  ): Promise<BackupSettings> {
    const before = await this.state.read();
    const next: BackupSettings = { ...before.settings };
    for (const k of Object.keys(next) as (keyof BackupSettings)[]) {
      const v = req[k];
      if (v !== undefined) (next as Record<string, unknown>)[k] = v;
    }
    if (next.keepDaily + next.keepWeekly + next.keepMonthly === 0)
      throw new RpcError(
        'invalid-argument',
        'The retention keeps nothing: set at least one of keepDaily, keepWeekly or keepMonthly above 0.',
      );
    await ctx.intent({ op: 'settings', settings: next });
    await this.state.update((s) => {
      s.settings = next;
    });
    return next;
  }

  /** Retention (forget --prune per site/database) and the trash purge. */
  async prune(
    ctx: ChangeContext,
    trigger: RunResult['trigger'] = 'manual',
  ): Promise<ReplyData<'prune backups'>> {
    const st = await this.state.read();
    await ctx.intent({ op: 'prune', since: new Date().toISOString() });
    try {
      if (!(await this.restic.initialized())) {
        const message = 'There is no repository yet: nothing to prune.';
        await this.state.update((s) => {
          s.lastPrune = result(true, message, trigger);
        });
        return { removed: 0, message };
      }
      const cutoff = Date.now() - st.settings.trashDays * 86_400_000;
      const expired = (await this.restic.snapshots())
        .filter((s) => describe(s)?.trash === true && Date.parse(s.time) < cutoff)
        .map((s) => s.id);
      ctx.progress(`Purging ${expired.length} expired trash snapshot(s)`);
      await this.restic.forget(expired);
      killPoint();
      ctx.progress('Applying the retention (restic forget --prune)');
      const removed =
        (await this.restic.forgetPolicy(RETAINED_TAG, {
          daily: st.settings.keepDaily,
          weekly: st.settings.keepWeekly,
          monthly: st.settings.keepMonthly,
        })) + expired.length;
      if (removed === expired.length && expired.length > 0) await this.restic.prune();
      const message = `Removed ${removed} snapshot(s) (${expired.length} from the trash).`;
      await this.state.update((s) => {
        s.lastPrune = result(true, message, trigger);
      });
      return { removed, message };
    } catch (e) {
      await this.state.update((s) => {
        s.lastPrune = result(false, e instanceof Error ? e.message : String(e), trigger);
      });
      throw e;
    }
  }

  async check(ctx: ChangeContext, trigger: RunResult['trigger'] = 'manual'): Promise<RunResult> {
    await ctx.intent({ op: 'check', since: new Date().toISOString() });
    ctx.progress('Checking the repository (restic check)');
    let r: RunResult;
    if (!(await this.restic.initialized())) r = result(true, 'There is no repository yet.', trigger);
    else {
      const c = await this.restic.check().catch((e: unknown) => ({
        ok: false,
        output: e instanceof Error ? e.message : String(e),
      }));
      r = result(c.ok, c.ok ? 'The repository is intact (restic check: no errors).' : c.output, trigger);
    }
    await this.state.update((s) => {
      s.lastCheck = r;
    });
    if (!r.ok) this.logger.error({ output: r.message }, 'backup repository check failed');
    return r;
  }
}

/** When the schedule runs the next backup (null when it is off). */
export function nextBackupAt(st: BackupState): string | null {
  if (!st.settings.scheduleEnabled) return null;
  const from = Date.parse(st.lastScheduled ?? st.anchor);
  return new Date(from + st.settings.everyHours * 3_600_000).toISOString();
}

/** A short random key for a restore's scratch names. */
export const opKey = (): string => randomBytes(6).toString('hex');
