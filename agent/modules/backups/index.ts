import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { RpcError } from '../../../shared/protocol/errors.ts';
// This module's schemas (the router validates its events with them): built when it loads.
import '../../../shared/protocol/events/backups.ts';
import {
  available,
  noChange,
  unavailable,
  type AgentModule,
  type BackupSource,
  type ModuleContext,
  type Recovered,
} from '../types.ts';
import { Mutex } from './repo-lock.ts';
import { Restic } from './restic.ts';
import { databaseRestoreIntent, recoverDatabaseRestore, restoreDatabase } from './restore-database.ts';
import { recoverSiteRestore, restoreSite, siteRestoreIntent } from './restore-site.ts';
import { dueWork, SCHEDULE_TICK_MS } from './schedule.ts';
import { BackupService, isMetaDir } from './service.ts';
import {
  ensurePasswordFile,
  parseBackupsSettings,
  readEnvFile,
  shownLocation,
  type BackupRepository,
} from './settings.ts';
import { StateFile } from './state.ts';

/** What the backups module's own mutations record (restores: see restore-site/-database.ts). */
const backupsIntent = z.union([
  siteRestoreIntent,
  databaseRestoreIntent,
  z.strictObject({ op: z.literal('back up'), since: z.iso.datetime() }),
  z.strictObject({ op: z.literal('settings'), settings: z.record(z.string(), z.unknown()) }),
  z.strictObject({ op: z.enum(['prune', 'check']), since: z.iso.datetime() }),
]);

/**
 * Backups on restic (issue 23; docs/backups.md): a repository per host, sites and databases
 * backed up on demand and on a schedule, retention, restores to the same or a new name, a trash
 * snapshot before a site or database is deleted, and `restic check` on a schedule. What a site
 * or database is made of comes from the websites, ftp and mysql modules (their backup sources).
 */
export function createBackupsModule(ctx: ModuleContext): AgentModule<'backups'> {
  let settingsError: string | null = null;
  let repo: BackupRepository | null = null;
  try {
    repo = parseBackupsSettings(ctx.moduleSettings?.backups, ctx.layout);
  } catch (e) {
    settingsError = (e as Error).message;
  }
  const dir = path.join(ctx.layout.stateDir, 'backups');
  const sources = (): BackupSource => ctx.backupSources?.() ?? {};
  const restic = repo ? new Restic(repo, ctx.exec, path.join(dir, 'cache'), os.hostname() || 'ponio') : null;
  const svc = restic ? new BackupService(restic, new StateFile(dir), sources, ctx.logger) : null;
  const need = (): BackupService => {
    if (!svc) throw new RpcError('unsupported', settingsError ?? 'backups are not configured');
    return svc;
  };
  // The module's own operations and the schedule run one at a time (the router's module lock
  // does not cover the schedule).
  const serial = new Mutex();
  let timer: NodeJS.Timeout | null = null;
  let stopping = false;

  const tick = async (): Promise<void> => {
    const s = need();
    await serial.run(async () => {
      if (stopping) return;
      const due = dueWork(await s.state.read(), Date.now());
      if (due.backup) {
        await s
          .backUp({}, noChange, 'scheduled')
          .catch((e: unknown) => ctx.logger.error({ err: (e as Error).message }, 'scheduled backup failed'));
        await s
          .prune(noChange, 'scheduled')
          .catch((e: unknown) => ctx.logger.error({ err: (e as Error).message }, 'scheduled prune failed'));
      }
      if (due.check) await s.check(noChange, 'scheduled');
    });
  };

  const restore = async (
    snapshot: string,
    as: string | undefined,
    call: Parameters<typeof restoreSite>[5],
  ) => {
    const s = need();
    const { snap, what } = await s.find(snapshot);
    const src = sources();
    if (what.kind === 'site') {
      if (!src.sites) throw new RpcError('unsupported', 'The websites module is not available on this host.');
      return restoreSite(s, src.sites, snap.id, what.name, as, call);
    }
    if (!src.databases) throw new RpcError('unsupported', 'The mysql module is not available on this host.');
    return restoreDatabase(s, src.databases, snap.id, what.name, as, call);
  };

  const recover = async (intent: unknown): Promise<Recovered> => {
    const s = need();
    const it = backupsIntent.parse(intent);
    const src = sources();
    switch (it.op) {
      case 'restore site':
        if (!src.sites) throw new Error('the websites module is not available to settle a restore');
        return recoverSiteRestore(s, src.sites, it);
      case 'restore database':
        if (!src.databases) throw new Error('the mysql module is not available to settle a restore');
        return recoverDatabaseRestore(src.databases, it);
      case 'back up':
        // All or nothing: the snapshots a killed run made go again.
        await s.forgetSince(it.since);
        return { outcome: 'absent' };
      case 'prune':
        // Forgetting cannot be undone: a killed prune is finished (restic prune can run again).
        return { outcome: 'applied', data: await s.prune(noChange) };
      case 'settings': {
        const now = (await s.state.read()).settings;
        return JSON.stringify(now) === JSON.stringify({ ...now, ...it.settings })
          ? { outcome: 'applied', data: now }
          : { outcome: 'absent' };
      }
      case 'check': {
        // A check changes nothing but its recorded result: in if it was recorded, else it did not happen.
        const last = (await s.state.read()).lastCheck;
        return last && Date.parse(last.at) >= Date.parse(it.since)
          ? { outcome: 'applied', data: last }
          : { outcome: 'absent' };
      }
    }
  };

  return {
    name: 'backups',
    availability: () => (settingsError !== null ? unavailable(settingsError) : available()),
    async start() {
      if (!repo) return;
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      await ensurePasswordFile(repo.passwordFile);
      repo.env = readEnvFile(repo.envFile);
      // Metadata directories of backups a killed agent left (restores settle theirs in recover()).
      const wwwRoot = sources().sites?.wwwRoot;
      if (wwwRoot !== undefined)
        for (const n of await fsp.readdir(wwwRoot).catch(() => [] as string[]))
          if (isMetaDir(n)) await fsp.rm(path.join(wwwRoot, n), { recursive: true, force: true });
      stopping = false;
      timer = setInterval(() => {
        tick().catch((e: unknown) =>
          ctx.logger.error({ err: (e as Error).message }, 'backup schedule failed'),
        );
      }, SCHEDULE_TICK_MS);
      timer.unref();
    },
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      timer = null;
      await serial.run(() => Promise.resolve());
    },
    recover: (_event, intent) => serial.run(() => recover(intent)),
    writesIn: () => [dir],
    before: {
      'delete website': async (req, call) => {
        const sites = sources().sites;
        if (req.removeFiles !== true || !svc || !sites || (await sites.files(req.domain)) === null) return;
        call.progress(
          `Putting ${req.domain} in the trash (a snapshot kept ${(await svc.state.read()).settings.trashDays} days)`,
        );
        await svc.backupSite(req.domain, 'trash').catch((e: unknown) => {
          throw new RpcError(
            'failed-precondition',
            `${req.domain} was not deleted: its trash snapshot failed. ${(e as Error).message}`,
          );
        });
      },
      'drop database': async (req, call) => {
        const db = sources().databases;
        if (!svc || !db || !(await db.databases()).includes(req.name)) return;
        call.progress(
          `Putting ${req.name} in the trash (a snapshot kept ${(await svc.state.read()).settings.trashDays} days)`,
        );
        await svc.backupDatabase(req.name, 'trash').catch((e: unknown) => {
          throw new RpcError(
            'failed-precondition',
            `${req.name} was not dropped: its trash snapshot failed. ${(e as Error).message}`,
          );
        });
      },
    },
    handlers: {
      'list backups': (req) => need().list(req, shownLocation(repo?.location ?? '')),
      'back up': (req, call) => serial.run(() => need().backUp(req, call)),
      'restore backup': (req, call) => serial.run(() => restore(req.snapshot, req.as, call)),
      'set backup settings': (req, call) => serial.run(() => need().setSettings(req, call)),
      'prune backups': (_req, call) => serial.run(() => need().prune(call)),
      'check backups': (_req, call) => serial.run(() => need().check(call)),
    },
  };
}
