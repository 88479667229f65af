import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { atomicWrite, fsyncDir, readIfExists, tempNameFor } from '../../os/files.ts';
import { killPoint } from '../../journal/kill-point.ts';
import type { ApacheHost, CheckResult } from './apache.ts';
import type { SitePhp } from './site-php.ts';
import type { SitePaths } from './site-tree.ts';

/**
 * One change of an existing site's configuration (PHP on/off/version/settings; HTTPS options and
 * certificates): a set of files that go from `before` to `after` around one pivot, the site's
 * vhost. Files of phase `pre` (a new pool, a certificate) are written and checked before the
 * vhost switches to them; `post` files (the pool it no longer uses) are removed after.
 *
 * validate → record the intent (every before/after, fsynced) → [give the tree to the site's
 * user] → pre files → php-fpm -t + reload → candidate vhost checked by `apache2 -t` → rename (the
 * pivot) → Apache reload → post files. Any failure before the end puts every file back and
 * reloads. After a kill, recover() looks at the vhost: the new text → roll forward, else back.
 */

const fileChange = z.strictObject({
  path: z.string(),
  before: z.string().nullable(),
  after: z.string().nullable(),
  phase: z.enum(['pre', 'post']),
  mode: z.number().int().optional(),
  /** before/after name 0600 copies to read (a private key never goes into the journal). */
  ref: z.boolean().optional(),
});
export type FileChange = z.infer<typeof fileChange>;

export const siteChangeSchema = z.strictObject({
  op: z.literal('change'),
  domain: z.string(),
  vhost: z.strictObject({ path: z.string(), before: z.string(), after: z.string() }),
  files: z.array(fileChange),
  fpm: z.strictObject({ pre: z.array(z.string()), post: z.array(z.string()) }),
  /** Hand the tree to the site's user (PHP turned on for a site www-data owned). */
  owner: z.strictObject({ user: z.string(), userExisted: z.boolean(), treeWasWww: z.boolean() }).nullable(),
});
export type SiteChange = z.infer<typeof siteChangeSchema>;

export interface ChangeDeps {
  apache: ApacheHost;
  php: SitePhp;
  logger: Logger;
  paths: SitePaths;
  progress: (m: string) => void;
  intent: (data: unknown) => Promise<void>;
  /** Apache's reload after a change of this site (test hooks included: service.reloadFor). */
  reload: () => Promise<CheckResult>;
  /** Reload after a rollback: '' or a sentence for the admin. */
  reloadAfterRollback: (failure: unknown) => Promise<string>;
  checkerFailed: (what: string, r: CheckResult) => RpcError;
}

async function put(file: string, value: string | null, mode?: number, ref?: boolean): Promise<void> {
  let content = value;
  if (value !== null && ref === true) {
    const staged = await readIfExists(value);
    // A staged copy that is missing: the agent died while staging, before any file was
    // written (staging comes first), so the file is still as it was.
    if (staged === null) return;
    content = staged;
  }
  if (content === null) {
    await fsp.rm(file, { force: true });
    await fsyncDir(path.dirname(file)).catch(() => undefined);
  } else {
    await atomicWrite(file, content, { mode: mode ?? 0o644 });
  }
}

const withNote = (e: unknown, note: string): unknown =>
  note === '' || !(e instanceof RpcError) ? e : new RpcError(e.code, `${e.message}\n${note}`, e.details);

/**
 * `staged`: the contents of `ref` copies (0600), written after the intent is recorded (the
 * intent names them, the journal never holds their contents).
 */
export async function applySiteChange(
  c: SiteChange,
  d: ChangeDeps,
  staged: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  await d.intent(c);
  for (const [file, content] of staged) await atomicWrite(file, content, { mode: 0o600 });
  let ownerTouched = false;
  let pivoted = false;
  const candidate = tempNameFor(c.vhost.path);
  try {
    if (c.owner) {
      d.progress(`Giving the files of ${c.domain} to its own user ${c.owner.user}`);
      ownerTouched = true;
      const { owner } = await d.php.ensureUser(c.owner.user, c.domain, d.paths);
      killPoint();
      await d.php.giveTree(d.paths, owner);
      killPoint();
    }
    for (const f of c.files.filter((x) => x.phase === 'pre')) await put(f.path, f.after, f.mode, f.ref);
    for (const v of c.fpm.pre) {
      d.progress(`Testing and reloading php${v}-fpm`);
      await d.php.testAndReload(v as never);
      killPoint();
    }
    d.progress('Testing the Apache configuration');
    await fsp.writeFile(candidate, c.vhost.after, { mode: 0o644 });
    const test = await d.apache.configTest(candidate);
    if (!test.ok) throw d.checkerFailed('Apache config test failed', test);
    await fsp.rename(candidate, c.vhost.path);
    pivoted = true;
    await fsyncDir(path.dirname(c.vhost.path));
    killPoint();
    d.progress('Reloading Apache');
    const r = await d.reload();
    if (!r.ok) throw d.checkerFailed('Apache did not reload', r);
  } catch (e) {
    d.progress('Rolling back');
    await fsp.rm(candidate, { force: true });
    const notes: string[] = [];
    if (pivoted) await put(c.vhost.path, c.vhost.before);
    for (const f of c.files.filter((x) => x.phase === 'pre')) await put(f.path, f.before, f.mode, f.ref);
    for (const v of c.fpm.pre) notes.push(await d.php.reloadQuietly(v));
    if (ownerTouched && c.owner) await undoOwner(c, d);
    if (pivoted) notes.push(await d.reloadAfterRollback(e));
    throw withNote(e, notes.filter((n) => n !== '').join('\n'));
  }
  await finishPost(c, d);
}

async function finishPost(c: SiteChange, d: ChangeDeps): Promise<void> {
  for (const f of c.files.filter((x) => x.phase === 'post')) await put(f.path, f.after, f.mode, f.ref);
  killPoint();
  for (const v of c.fpm.post) {
    const note = await d.php.reloadQuietly(v);
    if (note !== '') d.logger.warn({ note }, 'php-fpm did not reload after a site change');
  }
}

async function undoOwner(c: SiteChange, d: ChangeDeps): Promise<void> {
  if (!c.owner) return;
  if (c.owner.treeWasWww) await d.php.returnTree(d.paths);
  if (!c.owner.userExisted) await d.php.removeUser(c.owner.user, c.domain);
}

/**
 * Settles a change a killed agent left: forward when the vhost holds the new text (it was
 * checked before the rename), else back. The caller reloads Apache afterwards.
 */
export async function settleSiteChange(c: SiteChange, d: ChangeDeps): Promise<'applied' | 'absent'> {
  const now = await readIfExists(c.vhost.path);
  if (now === c.vhost.after) {
    if (c.owner) {
      const { owner } = await d.php.ensureUser(c.owner.user, c.domain, d.paths);
      await d.php.giveTree(d.paths, owner);
    }
    for (const f of c.files.filter((x) => x.phase === 'pre')) await put(f.path, f.after, f.mode, f.ref);
    for (const v of c.fpm.pre) await d.php.reloadQuietly(v);
    await finishPost(c, d);
    return 'applied';
  }
  if (now !== null && now !== c.vhost.before) await put(c.vhost.path, c.vhost.before);
  for (const f of c.files.filter((x) => x.phase === 'pre')) await put(f.path, f.before, f.mode, f.ref);
  for (const v of c.fpm.pre) await d.php.reloadQuietly(v);
  await undoOwner(c, d);
  return 'absent';
}
