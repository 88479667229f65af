import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData } from '../../../shared/protocol/index.ts';
// This module's schemas (the router validates its events with them): built when it loads.
import '../../../shared/protocol/events/ftp.ts';
import type { Exec } from '../../os/exec.ts';
import { atomicWrite } from '../../os/files.ts';
import { z } from 'zod';
import {
  noProgress,
  type AgentModule,
  type ChangeContext,
  type ModuleContext,
  type Progress,
  type Recovered,
} from '../types.ts';
import { systemAccounts } from './accounts.ts';
import { sha512Crypt } from './hash.ts';
import { createHome, isStrictlyInside, removeDirs, resolveHome, websiteOwner } from './home.ts';
import { KeyedMutex } from '../../rpc/lock.ts';
import {
  FTP_SHELL,
  PONIO_GECOS,
  findUser,
  formatPasswd,
  isEnabled,
  lockHash,
  parsePasswd,
  unlockHash,
  updateUser,
  users,
  type PasswdLine,
  type PasswdUser,
} from './passwd.ts';
import { createSandboxAdapter, createSystemAdapter, type ProftpdAdapter } from './proftpd.ts';
import { parseFtpSettings } from './settings.ts';
import { ftpBackupSource } from './backup-source.ts';

type FtpUserReply = ReplyData<'create ftp user'>;

const isDirectory = async (p: string): Promise<boolean> =>
  fsp.stat(p).then(
    (st) => st.isDirectory(),
    () => false,
  );

const toReply = async (u: PasswdUser): Promise<FtpUserReply> => ({
  username: u.username,
  home: u.home,
  uid: u.uid,
  gid: u.gid,
  enabled: isEnabled(u),
  homeExists: await isDirectory(u.home),
});

/** What an FTP mutation records before its first change (see recover()). */
const ftpIntent = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('create'), username: z.string(), made: z.array(z.string()) }),
  z.strictObject({ op: z.literal('delete'), username: z.string() }),
  z.strictObject({ op: z.enum(['password', 'disable', 'enable']), username: z.string(), hash: z.string() }),
]);
type FtpIntent = z.infer<typeof ftpIntent>;

const notFound = (username: string): RpcError =>
  new RpcError('not-found', `There is no FTP user "${username}" on this host.`);

/**
 * The user file store: read → change as data → atomic write (0600, daemon's user) → verify (read
 * back + `proftpd -t`) → on failure put the exact previous bytes back. The router holds the module
 * lock around every mutation, so read-modify-write cycles never interleave.
 *
 * No reload is needed after a user-file change: proftpd's mod_auth_file reads the AuthUserFile
 * at every login (each session is a fresh process), so the next login sees the change.
 */
class UserFile {
  constructor(
    private readonly adapter: ProftpdAdapter,
    private readonly logger: Logger,
  ) {}

  async read(): Promise<{ raw: Buffer | null; lines: PasswdLine[] }> {
    const raw = await fsp.readFile(this.adapter.userFile).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    return { raw, lines: raw === null ? [] : parsePasswd(raw.toString('utf8')) };
  }

  async write(
    before: Buffer | null,
    lines: readonly PasswdLine[],
    step: Progress = noProgress,
  ): Promise<void> {
    const text = formatPasswd(lines);
    step('Writing the FTP user file');
    const owner = await this.adapter.userFileOwner();
    const opts = { mode: 0o600, uid: owner.uid, gid: owner.gid };
    await atomicWrite(this.adapter.userFile, text, opts);
    try {
      const back = await fsp.readFile(this.adapter.userFile, 'utf8');
      if (formatPasswd(parsePasswd(back)) !== text)
        throw new Error('the user file did not read back as written');
      step('Checking the proftpd configuration (proftpd -t)');
      await this.adapter.check();
    } catch (e) {
      if (before === null) await fsp.rm(this.adapter.userFile, { force: true });
      else await atomicWrite(this.adapter.userFile, before, opts);
      this.logger.warn({ err: (e as Error).message }, 'ftp user file change rolled back');
      if (e instanceof RpcError) throw e;
      throw new RpcError(
        'failed-precondition',
        `The FTP user file was not changed: ${(e as Error).message}.`,
      );
    }
  }
}

export interface FtpModuleOptions {
  /** Overrides the adapter (tests of the module logic only). */
  adapter?: ProftpdAdapter;
  exec?: Exec;
}

export function createFtpModule(ctx: ModuleContext, opts: FtpModuleOptions = {}): AgentModule<'ftp'> {
  let settingsError: string | null = null;
  let settings = {};
  try {
    settings = parseFtpSettings(ctx.moduleSettings?.ftp);
  } catch (e) {
    settingsError = (e as Error).message;
  }
  const exec = opts.exec ?? ctx.exec;
  const adapterOpts = { exec, logger: ctx.logger, layout: ctx.layout, settings };
  const adapter =
    opts.adapter ??
    (ctx.layout.mode === 'sandbox' ? createSandboxAdapter(adapterOpts) : createSystemAdapter(adapterOpts));
  const store = new UserFile(adapter, ctx.logger);

  const existing = async (
    username: string,
  ): Promise<{ raw: Buffer | null; lines: PasswdLine[]; user: PasswdUser }> => {
    const { raw, lines } = await store.read();
    const user = findUser(lines, username);
    if (!user) throw notFound(username);
    return { raw, lines, user };
  };

  /** One user's line changed: the intent names the hash it will have (recover() compares). */
  const change = async (
    username: string,
    op: 'password' | 'disable' | 'enable',
    edit: (u: PasswdUser) => PasswdUser,
    call: ChangeContext,
  ): Promise<FtpUserReply> => {
    const { raw, lines, user } = await existing(username);
    const next = edit(user);
    if (JSON.stringify(next) !== JSON.stringify(user)) {
      await call.intent({ op, username, hash: next.hash } satisfies FtpIntent);
      await store.write(
        raw,
        updateUser(lines, username, () => next),
        (m) => call.progress(m),
      );
    }
    return toReply(next);
  };

  /**
   * A change a killed agent left (AgentModule.recover): the user file is replaced atomically, so
   * it holds the old or the new line; a create's new home directories without a user are removed.
   */
  /**
   * FTP users of a website act as its owner: when the websites module gives a site's files to
   * the site's own user (PHP turned on), the users whose home is in that tree get its uid/gid.
   * Derived state, so not journaled: it is recomputed at every start (a kill mid-way is repaired
   * then). Runs under `local` so it never interleaves with a mutation's read-modify-write.
   */
  const followSiteOwners = async (): Promise<void> => {
    const { raw, lines } = await store.read();
    const wwwRoot = path.resolve(adapter.wwwRoot);
    let changed = false;
    const next: PasswdLine[] = [];
    for (const line of lines) {
      if (
        line.kind !== 'user' ||
        line.user.gecos !== PONIO_GECOS ||
        !isStrictlyInside(wwwRoot, line.user.home)
      ) {
        next.push(line);
        continue;
      }
      const domain = path.relative(wwwRoot, line.user.home).split(path.sep)[0] ?? '';
      const owner = await websiteOwner(path.join(wwwRoot, domain)).catch(() => null);
      if (owner === null || (owner.uid === line.user.uid && owner.gid === line.user.gid)) {
        next.push(line);
        continue;
      }
      changed = true;
      next.push({ kind: 'user', user: { ...line.user, uid: owner.uid, gid: owner.gid } });
      ctx.logger.info({ username: line.user.username, uid: owner.uid }, 'ftp user follows its site owner');
    }
    if (changed) await store.write(raw, next);
  };
  const local = new KeyedMutex();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => local.run('ftp', fn);
  ctx.siteOwners?.onChanged(() => {
    void serial(followSiteOwners).catch((e: unknown) =>
      ctx.logger.error({ err: (e as Error).message }, 'ftp users could not follow a site owner'),
    );
  });

  const recover = async (intent: unknown): Promise<Recovered> => {
    const it = ftpIntent.parse(intent);
    const user = findUser((await store.read()).lines, it.username);
    switch (it.op) {
      case 'create':
        if (user) return { outcome: 'applied', data: await toReply(user) };
        await removeDirs(it.made);
        return { outcome: 'absent' };
      case 'delete':
        if (user) return { outcome: 'absent' };
        await adapter.endSessions(it.username);
        return { outcome: 'applied', data: { username: it.username } };
      default:
        if (user?.hash !== it.hash) return { outcome: 'absent' };
        if (it.op !== 'enable') await adapter.endSessions(it.username);
        return { outcome: 'applied', data: await toReply(user) };
    }
  };

  const mod: AgentModule<'ftp'> = {
    name: 'ftp',
    availability: () =>
      settingsError !== null ? { available: false, reason: settingsError } : adapter.availability(),
    start: async () => {
      await adapter.start();
      await followSiteOwners();
    },
    stop: () => adapter.stop(),
    service: () => adapter.service(),
    recover: (_event, intent) => recover(intent),
    writesIn: () => [path.dirname(adapter.userFile), adapter.ftpRoot],
    backupSource: { ftp: ftpBackupSource(store) },
    handlers: {
      'list ftp users': async () => ({
        users: await Promise.all(users((await store.read()).lines).map(toReply)),
      }),

      'create ftp user': async (req, call) => {
        const { raw, lines } = await store.read();
        if (findUser(lines, req.username))
          throw new RpcError('already-exists', `The FTP user "${req.username}" already exists.`);
        if ((await systemAccounts()).has(req.username))
          throw new RpcError(
            'invalid-argument',
            `"${req.username}" is a system account on this host; pick another name.`,
          );
        const home = await resolveHome(req.home, {
          wwwRoot: adapter.wwwRoot,
          ftpRoot: adapter.ftpRoot,
          sitesAvailable: adapter.sitesAvailable,
        });
        const step: Progress = (m) => call.progress(m);
        step('Hashing the password (SHA-512 crypt)');
        const hash = await sha512Crypt(exec, req.password);
        const user: PasswdUser = {
          username: req.username,
          hash,
          uid: home.uid,
          gid: home.gid,
          gecos: PONIO_GECOS,
          home: home.path,
          shell: FTP_SHELL,
        };
        await call.intent({ op: 'create', username: user.username, made: home.missing } satisfies FtpIntent);
        const made = await createHome(home);
        try {
          // Re-check right before the write: a directory on the way swapped for a symlink since
          // the home was resolved must not move the jail.
          if ((await fsp.realpath(home.path)) !== home.path)
            throw new RpcError(
              'failed-precondition',
              `The home ${home.path} changed while it was being set up; try again.`,
            );
          await store.write(raw, [...lines, { kind: 'user', user }], step);
        } catch (e) {
          await removeDirs(made);
          throw e;
        }
        call.logger.info({ username: user.username, home: user.home, uid: user.uid }, 'ftp user created');
        const out = await toReply(user);
        call.emit('ftp user created', out);
        return out;
      },

      'set ftp password': async (req, call) => {
        await existing(req.username); // not-found before spending time on the hash
        const step: Progress = (m) => call.progress(m);
        step('Hashing the password (SHA-512 crypt)');
        const hash = await sha512Crypt(exec, req.password);
        // A disabled user stays disabled: the new hash is stored locked.
        const out = await change(
          req.username,
          'password',
          (u) => ({ ...u, hash: isEnabled(u) ? hash : lockHash(hash) }),
          call,
        );
        const ended = await adapter.endSessions(req.username);
        call.logger.info({ username: req.username, sessionsEnded: ended }, 'ftp password changed');
        call.emit('ftp user changed', out);
        return out;
      },

      'disable ftp user': async (req, call) => {
        const out = await change(req.username, 'disable', (u) => ({ ...u, hash: lockHash(u.hash) }), call);
        const ended = await adapter.endSessions(req.username);
        call.logger.info({ username: req.username, sessionsEnded: ended }, 'ftp user disabled');
        call.emit('ftp user changed', out);
        return out;
      },

      'enable ftp user': async (req, call) => {
        const { user } = await existing(req.username);
        // Never turn a lock into an empty or junk hash (that could mean "no password").
        if (!/^\$[0-9a-z]+\$/.test(unlockHash(user.hash)))
          throw new RpcError(
            'failed-precondition',
            `The FTP user "${req.username}" has no usable password; set a new password to enable it.`,
          );
        const out = await change(req.username, 'enable', (u) => ({ ...u, hash: unlockHash(u.hash) }), call);
        call.emit('ftp user changed', out);
        return out;
      },

      'delete ftp user': async (req, call) => {
        const { raw, lines } = await existing(req.username);
        await call.intent({ op: 'delete', username: req.username } satisfies FtpIntent);
        await store.write(
          raw,
          updateUser(lines, req.username, () => null),
          (m) => call.progress(m),
        );
        const ended = await adapter.endSessions(req.username);
        call.logger.info({ username: req.username, sessionsEnded: ended }, 'ftp user deleted (files kept)');
        call.emit('ftp user deleted', { username: req.username });
        return { username: req.username };
      },
    },
  };
  // Every mutation also holds the module's own lock, shared with followSiteOwners (an
  // in-process notice that does not go through the router).
  const h = mod.handlers;
  h['create ftp user'] = (
    (f) => (req, call) =>
      serial(() => f(req, call))
  )(h['create ftp user']);
  h['set ftp password'] = (
    (f) => (req, call) =>
      serial(() => f(req, call))
  )(h['set ftp password']);
  h['disable ftp user'] = (
    (f) => (req, call) =>
      serial(() => f(req, call))
  )(h['disable ftp user']);
  h['enable ftp user'] = (
    (f) => (req, call) =>
      serial(() => f(req, call))
  )(h['enable ftp user']);
  h['delete ftp user'] = (
    (f) => (req, call) =>
      serial(() => f(req, call))
  )(h['delete ftp user']);
  return mod;
}
