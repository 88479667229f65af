import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData } from '../../../shared/protocol/index.ts';
import { validateDomain } from '../../../shared/validate/domain.ts';
import { fsyncDir } from '../../os/files.ts';
import { killPoint } from '../../journal/kill-point.ts';
import type { ChangeContext, Recovered, SiteBackupSource } from '../types.ts';
import { isMetaDir, opKey, type BackupService, type SiteManifest } from './service.ts';

const savedVhost = z
  .strictObject({
    text: z.string(),
    link: z.strictObject({ target: z.string().nullable(), content: z.string().nullable() }).nullable(),
  })
  .nullable();

/** What a site restore records before its first change, and again at each step. */
export const siteRestoreIntent = z.strictObject({
  op: z.literal('restore site'),
  domain: z.string(),
  snapshot: z.string(),
  before: z.string().nullable(),
  /** `<wwwRoot>/.ponio-restore-<key>`: the snapshot's files before they go live. */
  staging: z.string(),
  /** `<wwwRoot>/.ponio-aside-<key>`: the site's current tree while the restore runs. */
  aside: z.string(),
  hadTree: z.boolean(),
  saved: savedVhost,
  phase: z.enum(['staging', 'swapping', 'commit']),
});
type SiteRestoreIntent = z.infer<typeof siteRestoreIntent>;

const exists = (p: string): Promise<boolean> =>
  fsp.lstat(p).then(
    () => true,
    () => false,
  );

const manifestSchema = z.strictObject({
  format: z.literal(1),
  kind: z.literal('site'),
  domain: z.string(),
  tree: z.string(),
  vhost: z.boolean(),
  ftpUsers: z.number().int(),
});

async function rename(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  await fsyncDir(path.dirname(to));
  killPoint();
}

/**
 * Restores a site snapshot through validate → apply → verify → roll back:
 * the snapshot is restored into a staging directory in the web root (same filesystem, so the
 * swap is a rename), the live tree is moved aside, the staged tree renamed into place, and the
 * websites module writes, tests and reloads the vhost. Any failure (or a kill before the commit
 * point) moves the original tree and vhost back; after the commit only clean-up is left.
 */
export async function restoreSite(
  svc: BackupService,
  sites: SiteBackupSource,
  snapshot: string,
  name: string,
  as: string | undefined,
  ctx: ChangeContext,
): Promise<ReplyData<'restore backup'>> {
  const v = validateDomain(as ?? name);
  if (!v.ok) throw new RpcError('invalid-argument', v.message);
  const domain = v.value;
  const current = await sites.files(domain);
  const tree = await sites.treeOf(domain);
  const hadTree = await exists(tree);
  if (domain !== name && (current !== null || hadTree))
    throw new RpcError(
      'already-exists',
      current !== null
        ? `The website ${domain} exists; restore into a name that is free, or into ${name} itself.`
        : `${tree} exists; move it away before restoring into ${domain}.`,
    );
  if (current === null && hadTree && domain === name)
    throw new RpcError(
      'failed-precondition',
      `${tree} exists but is no website of PonIO's; move it away before restoring ${domain}.`,
    );

  // Same name, and something is there: it is backed up first, so the restore can be undone.
  let before: string | null = null;
  if (current !== null) {
    ctx.progress(`Backing up the current state of ${domain} first`);
    before = await svc.backupSite(domain, 'pre-restore');
  }
  const key = opKey();
  const it: SiteRestoreIntent = {
    op: 'restore site',
    domain,
    snapshot,
    before,
    staging: path.join(sites.wwwRoot, `.ponio-restore-${key}`),
    aside: path.join(sites.wwwRoot, `.ponio-aside-${key}`),
    hadTree,
    saved: current !== null ? await sites.savedVhost(domain) : null,
    phase: 'staging',
  };
  await ctx.intent(it);
  try {
    await fsp.mkdir(it.staging, { mode: 0o700 });
    ctx.progress('Reading the snapshot into a staging directory');
    await svc.restic.restore(snapshot, it.staging);
    killPoint();
    const manifest = await readManifest(it.staging, name);
    const metaDir = await findMeta(it.staging);
    const stagedTree = path.join(it.staging, manifest.tree);
    const vhostText = manifest.vhost ? await fsp.readFile(path.join(metaDir, 'vhost.conf'), 'utf8') : null;
    const spec = vhostText === null ? null : sites.describeVhost(vhostText);
    if (vhostText !== null && spec === null)
      throw new RpcError(
        'failed-precondition',
        'The snapshot’s vhost was not written by PonIO (or is damaged); nothing was restored.',
      );
    if (!(await exists(stagedTree))) await fsp.mkdir(stagedTree, { mode: 0o755 });

    await ctx.intent({ ...it, phase: 'swapping' });
    ctx.progress(`Putting the files of ${domain} in place`);
    if (it.saved) await sites.detach(domain);
    if (hadTree) await rename(tree, it.aside);
    await rename(stagedTree, tree);
    ctx.progress('Writing and testing the vhost, reloading Apache');
    // A new name gets no aliases: they belong to the original site.
    await sites.install(
      domain,
      {
        aliases: domain === name ? (spec?.aliases ?? []) : [],
        adminEmail: spec?.adminEmail ?? null,
        php: spec?.php ?? null,
      },
      ctx,
    );
    killPoint();
    if ((await sites.files(domain)) === null)
      throw new RpcError('internal', `The restored website ${domain} is not listed by the websites module.`);
    await ctx.intent({ ...it, phase: 'commit' });
  } catch (e) {
    ctx.progress('Rolling back');
    await rollBack(sites, it);
    throw e;
  }
  await finish(svc, sites, it, ctx);
  svc.logger.info({ domain, snapshot }, 'site restored');
  return { kind: 'site', name: domain, snapshot, before };
}

/** The snapshot's metadata directory, restored into the staging directory. */
async function findMeta(staging: string): Promise<string> {
  const names = (await fsp.readdir(staging)).filter(isMetaDir);
  if (names.length !== 1 || names[0] === undefined)
    throw new RpcError(
      'failed-precondition',
      'The snapshot holds no readable PonIO site manifest; nothing was restored.',
    );
  return path.join(staging, names[0]);
}

async function readManifest(staging: string, name: string | null): Promise<SiteManifest> {
  const meta = await findMeta(staging);
  const text = await fsp.readFile(path.join(meta, 'manifest.json'), 'utf8').catch(() => null);
  const m = text === null ? null : manifestSchema.safeParse(JSON.parse(text));
  if (
    !m?.success ||
    (name !== null && m.data.domain !== name) ||
    m.data.tree.includes('/') ||
    m.data.tree.startsWith('.')
  )
    throw new RpcError(
      'failed-precondition',
      'The snapshot holds no readable PonIO site manifest; nothing was restored.',
    );
  return m.data;
}

/** Puts the site back as it was before the restore (its tree, then its vhost, then a reload). */
async function rollBack(sites: SiteBackupSource, it: SiteRestoreIntent): Promise<void> {
  const tree = await sites.treeOf(it.domain);
  const swapped = !it.hadTree || (await exists(it.aside));
  if (it.phase !== 'staging' && swapped) {
    // What is at the tree's place is the restored copy: it goes (the original is aside, or was none).
    if (await exists(tree)) await fsp.rm(tree, { recursive: true, force: true });
    if (await exists(it.aside)) await rename(it.aside, tree);
  }
  if (it.phase !== 'staging') {
    if (it.saved) {
      await sites.detach(it.domain);
      await sites.reattach(it.domain, it.saved);
    } else await sites.remove(it.domain);
  }
  await fsp.rm(it.staging, { recursive: true, force: true });
}

/**
 * After the commit point: the site's FTP accounts that are missing come back (an account name
 * is unique per host, so a restore to a new name keeps the originals' and adds none), then the
 * scratch directories go. Recovery runs it again: both steps can run twice.
 */
async function finish(
  svc: BackupService,
  sites: SiteBackupSource,
  it: SiteRestoreIntent,
  ctx: Pick<ChangeContext, 'progress'>,
): Promise<void> {
  const ftp = svc.sources().ftp;
  const metaDir = await findMeta(it.staging).catch(() => null);
  if (ftp && metaDir !== null && (await exists(path.join(metaDir, 'ftp-users')))) {
    try {
      const manifest = await readManifest(it.staging, null);
      const lines = (await fsp.readFile(path.join(metaDir, 'ftp-users'), 'utf8'))
        .split('\n')
        .filter((l) => l !== '');
      const tree = await sites.treeOf(it.domain);
      const added = await ftp.restoreUsers(lines, path.join(path.dirname(tree), manifest.tree), tree);
      if (added.length > 0) ctx.progress(`FTP accounts restored: ${added.join(', ')}`);
    } catch (e) {
      // The site itself is restored; the accounts can be made again by hand.
      svc.logger.error({ err: (e as Error).message, domain: it.domain }, 'restoring the FTP accounts failed');
    }
  }
  await cleanUp(it);
}

async function cleanUp(it: SiteRestoreIntent): Promise<void> {
  await fsp.rm(it.aside, { recursive: true, force: true });
  await fsp.rm(it.staging, { recursive: true, force: true });
}

/** Settles a site restore a killed agent left: finished after the commit point, undone before. */
export async function recoverSiteRestore(
  svc: BackupService,
  sites: SiteBackupSource,
  it: SiteRestoreIntent,
): Promise<Recovered> {
  if (it.phase === 'commit') {
    await finish(svc, sites, it, { progress: () => undefined });
    return {
      outcome: 'applied',
      data: { kind: 'site', name: it.domain, snapshot: it.snapshot, before: it.before },
    };
  }
  await rollBack(sites, it);
  return { outcome: 'absent' };
}
