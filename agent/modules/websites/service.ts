import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData, RequestOf } from '../../../shared/protocol/index.ts';
import type { Website } from '../../../shared/protocol/events/websites.ts';
import { domainForDisplay, validateDomain } from '../../../shared/validate/domain.ts';
import { atomicWrite, fsyncDir, readIfExists, resolveUnder } from '../../os/files.ts';
import type { HostLayout } from '../../os/layout.ts';
import type { ApacheHost, CheckResult } from './apache.ts';
import { filesBlamed } from './apache-startcheck.ts';
import { createSiteTree, removeCreated, removeSiteTree, siteOwner, sitePaths } from './site-tree.ts';
import { maybeCrash, readTestHooks } from './test-hooks.ts';
import { parseVhost, renderVhost, type ParsedVhost } from './vhost.ts';
import { VhostCache } from './vhost-cache.ts';
import { noProgress, type Progress } from '../types.ts';

interface Entry {
  /** File name, e.g. `example.com.conf`. */
  name: string;
  /** Where the vhost lives (sites-available, or sites-enabled for a file only found there). */
  file: string;
  inAvailable: boolean;
  enabled: boolean;
  parsed: ParsedVhost;
}

/** A `create website` in progress, written before the first change (see recover()). */
interface PendingCreate {
  op: 'create';
  domain: string;
  /** Paths that did not exist before and that the create may make. */
  willCreate: string[];
}

const isConfName = (n: string): boolean => n.endsWith('.conf') && !n.startsWith('.');

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Replaces `link` with a symlink to `target` atomically (symlink to a temp name, then rename). */
async function atomicSymlink(target: string, link: string): Promise<void> {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.${process.pid}.${Date.now()}.tmp`);
  await fsp.symlink(target, tmp);
  try {
    await fsp.rename(tmp, link);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(link));
}

async function removeLink(link: string): Promise<void> {
  await fsp.rm(link, { force: true });
  await fsyncDir(path.dirname(link));
}

const checkerFailed = (what: string, r: CheckResult): RpcError =>
  r.faults !== undefined && r.faults.length > 0
    ? new RpcError('failed-precondition', `${r.output} PonIO did not change anything.`, {
        checkerOutput: r.output,
        faultyFiles: [...new Set(r.faults.map((f) => f.file))],
      })
    : new RpcError('failed-precondition', `${what}: ${r.output || 'no output'}`, { checkerOutput: r.output });

/** `e` with a sentence added to its message (an RpcError keeps its code and details). */
const withNote = (e: unknown, note: string): unknown =>
  note === '' || !(e instanceof RpcError) ? e : new RpcError(e.code, `${e.message}\n${note}`, e.details);

/**
 * The websites domain on top of an Apache host adapter. Every mutation runs under the router's
 * module lock and follows: validate → snapshot → atomic write → Apache's config test → graceful
 * reload → on failure restore and reload again (docs/websites.md).
 */
export class WebsitesService {
  private readonly journalFile: string;
  /** Parsed vhosts by file, re-read only when a file changed (vhost-cache.ts). */
  private readonly vhosts = new VhostCache<ParsedVhost>((text, file) => {
    const name = path.basename(file);
    const inAvailable = path.dirname(file) === this.apache.sitesAvailable;
    return parseVhost(text, inAvailable ? name.slice(0, -'.conf'.length) : null);
  });

  constructor(
    private readonly apache: ApacheHost,
    private readonly layout: HostLayout,
    private readonly logger: Logger,
  ) {
    this.journalFile = path.join(layout.stateDir, 'websites-pending.json');
  }

  // --- reading ----------------------------------------------------------------------------

  private async scan(): Promise<Entry[]> {
    const { sitesAvailable, sitesEnabled } = this.apache;
    const [availableNames, enabledList] = await Promise.all([
      readdirOrEmpty(sitesAvailable).then((names) => names.filter(isConfName)),
      readdirOrEmpty(sitesEnabled).then((names) => names.filter(isConfName)),
    ]);
    const enabledNames = new Set(enabledList);
    const availableFiles = availableNames.map((name) => path.join(sitesAvailable, name));
    const available = await this.vhosts.read(availableFiles);
    const out: Entry[] = [];
    for (const [i, name] of availableNames.entries()) {
      const parsed = available[i];
      const file = availableFiles[i];
      if (!parsed || file === undefined) continue;
      out.push({ name, file, inAvailable: true, enabled: enabledNames.has(name), parsed });
      enabledNames.delete(name);
    }
    // A file that lives only in sites-enabled was not written by PonIO (a dangling link is still
    // listed, so an admin sees it).
    const onlyEnabled = [...enabledNames];
    const enabledFiles = onlyEnabled.map((name) => path.join(sitesEnabled, name));
    const enabled = await this.vhosts.read(enabledFiles);
    for (const [i, name] of onlyEnabled.entries()) {
      out.push({
        name,
        file: enabledFiles[i] ?? path.join(sitesEnabled, name),
        inAvailable: false,
        enabled: true,
        parsed: { ...(enabled[i] ?? parseVhost('', null)), managed: false },
      });
    }
    return out;
  }

  private toWebsite(e: Entry): Website {
    const url = this.apache.url();
    return {
      domain: e.parsed.serverName ?? e.name.slice(0, -'.conf'.length),
      aliases: e.parsed.aliases,
      enabled: e.enabled,
      managed: e.parsed.managed,
      docroot: e.parsed.docroot,
      adminEmail: e.parsed.adminEmail,
      configFile: e.file,
      ...(url !== undefined ? { url } : {}),
    };
  }

  async list(): Promise<ReplyData<'list websites'>> {
    const url = this.apache.url();
    return {
      websites: (await this.scan()).map((e) => this.toWebsite(e)),
      ...(url !== undefined ? { url } : {}),
    };
  }

  private vhostFile(domain: string): string {
    return resolveUnder(this.apache.sitesAvailable, `${domain}.conf`);
  }

  private enabledLink(domain: string): string {
    return resolveUnder(this.apache.sitesEnabled, `${domain}.conf`);
  }

  /** The managed site of a domain, or the reason it cannot be changed. */
  private async findManaged(domain: string): Promise<Entry> {
    const entries = await this.scan();
    const own = entries.find((e) => e.name === `${domain}.conf`);
    const claimed =
      own ?? entries.find((e) => e.parsed.serverName === domain || e.parsed.aliases.includes(domain));
    if (!claimed) throw new RpcError('not-found', `There is no website ${domain} on this host.`);
    if (!claimed.parsed.managed || !claimed.inAvailable)
      throw new RpcError(
        'failed-precondition',
        `${domain} is served by ${claimed.file}, which PonIO did not write; PonIO lists it but never changes it.`,
      );
    return claimed;
  }

  // --- mutations --------------------------------------------------------------------------

  async create(req: RequestOf<'create website'>, progress: Progress = noProgress): Promise<Website> {
    const { domain } = req;
    const aliases = req.aliases ?? [];
    if (aliases.includes(domain))
      throw new RpcError('invalid-argument', `The alias ${domain} repeats the website's own domain.`);
    if (new Set(aliases).size !== aliases.length)
      throw new RpcError('invalid-argument', 'An alias is listed twice.');
    const names = [domain, ...aliases];
    const entries = await this.scan();
    for (const e of entries) {
      if (e.name === `${domain}.conf`)
        throw new RpcError('already-exists', `The website ${domain} already exists (${e.file}).`);
      const taken = names.find((n) => e.parsed.serverName === n || e.parsed.aliases.includes(n));
      if (taken !== undefined)
        throw new RpcError('already-exists', `${taken} is already served by ${e.file}.`);
    }

    const hooks = await readTestHooks(this.layout);
    const paths = await sitePaths(this.apache.wwwRoot, domain);
    const vhostFile = this.vhostFile(domain);
    const link = this.enabledLink(domain);
    const text = renderVhost({
      domain,
      aliases,
      adminEmail: req.adminEmail ?? null,
      docroot: paths.docroot,
      logDir: paths.logDir,
      listen: this.apache.vhostListen,
      corrupt: hooks.corruptVhost?.includes(domain) === true,
    });
    const owner = await siteOwner();

    // The journal names what this create may leave behind, so a killed agent cleans up on start.
    const willCreate: string[] = [];
    for (const p of [paths.siteDir, paths.docroot, paths.logDir, path.join(paths.docroot, 'index.html')])
      if (!(await exists(p))) willCreate.push(p);
    await this.writeJournal({ op: 'create', domain, willCreate });

    let created: string[] = [];
    let linked = false;
    const undo = async (): Promise<void> => {
      if (linked) await removeLink(link);
      await fsp.rm(vhostFile, { force: true });
      await removeCreated(created);
    };
    try {
      progress(`Creating the site tree and the vhost of ${domain}`);
      created = await createSiteTree(paths, domain, domainForDisplay(domain), owner);
      maybeCrash(hooks, 'after-tree');
      // Not live yet: Apache reads sites-enabled only.
      await atomicWrite(vhostFile, text, { mode: 0o644 });
      maybeCrash(hooks, 'after-vhost-write');
      progress('Testing the Apache configuration');
      const test = await this.apache.configTest(vhostFile);
      if (!test.ok) throw checkerFailed('Apache config test failed', test);
      // From here on, the live config is one the checker accepted.
      await atomicSymlink(path.relative(this.apache.sitesEnabled, vhostFile), link);
      linked = true;
      maybeCrash(hooks, 'after-enable');
      progress('Reloading Apache');
      const r = await this.reloadFor(domain);
      if (!r.ok) throw checkerFailed('Apache did not reload', r);
    } catch (e) {
      progress('Rolling back');
      await undo();
      const note = linked ? await this.reloadAfterRollback(e) : '';
      await this.clearJournal();
      throw withNote(e, note);
    }
    await this.clearJournal();
    this.logger.info({ domain }, 'website created');
    return this.toWebsite({
      name: `${domain}.conf`,
      file: vhostFile,
      inAvailable: true,
      enabled: true,
      parsed: parseVhost(text, domain),
    });
  }

  async enable(domain: string, progress: Progress = noProgress): Promise<Website> {
    const e = await this.findManaged(domain);
    if (e.enabled) return this.toWebsite(e);
    const link = this.enabledLink(domain);
    progress('Testing the Apache configuration');
    const test = await this.apache.configTest(e.file);
    if (!test.ok) throw checkerFailed('Apache config test failed', test);
    await atomicSymlink(path.relative(this.apache.sitesEnabled, e.file), link);
    progress('Reloading Apache');
    const r = await this.reloadFor(domain);
    if (!r.ok) {
      progress('Rolling back');
      await removeLink(link);
      throw withNote(checkerFailed('Apache did not reload', r), await this.reloadAfterRollback(r.output));
    }
    this.logger.info({ domain }, 'website enabled');
    return this.toWebsite({ ...e, enabled: true });
  }

  /** Takes a site out of sites-enabled, checks and reloads; restores the link on any failure. */
  private async unlink(domain: string, progress: Progress): Promise<void> {
    const link = this.enabledLink(domain);
    const st = await fsp.lstat(link);
    const target = st.isSymbolicLink() ? await fsp.readlink(link) : null;
    const content = target === null ? await fsp.readFile(link) : null;
    const restore = async (): Promise<void> => {
      if (target !== null) await atomicSymlink(target, link);
      else if (content !== null) await atomicWrite(link, content);
    };
    await removeLink(link);
    progress('Testing the Apache configuration');
    const test = await this.apache.configTest();
    if (!test.ok) {
      await restore();
      throw checkerFailed('Apache config test failed', test);
    }
    progress('Reloading Apache');
    const r = await this.reloadFor(domain);
    if (!r.ok) {
      progress('Rolling back');
      await restore();
      throw withNote(checkerFailed('Apache did not reload', r), await this.reloadAfterRollback(r.output));
    }
  }

  async disable(domain: string, progress: Progress = noProgress): Promise<Website> {
    const e = await this.findManaged(domain);
    if (!e.enabled) return this.toWebsite(e);
    await this.unlink(domain, progress);
    this.logger.info({ domain }, 'website disabled');
    return this.toWebsite({ ...e, enabled: false });
  }

  async delete(
    domain: string,
    removeFiles: boolean,
    progress: Progress = noProgress,
  ): Promise<ReplyData<'delete website'>> {
    const e = await this.findManaged(domain);
    // Resolve (and guard) the site tree before changing anything: a refused tree (e.g. a symlink
    // planted in place of the site directory) fails the call with the site still intact.
    const tree = removeFiles ? await sitePaths(this.apache.wwwRoot, domain) : null;
    if (e.enabled) await this.unlink(domain, progress);
    // No longer live: removing the file cannot affect Apache.
    await fsp.rm(e.file, { force: true });
    await fsyncDir(path.dirname(e.file));
    let filesRemoved = false;
    if (tree) {
      progress(`Removing the files of ${domain}`);
      filesRemoved = await removeSiteTree(tree);
    }
    this.logger.info({ domain, filesRemoved }, 'website deleted');
    return { domain, filesRemoved };
  }

  /** The graceful reload after a change to `domain` (a sandbox test hook may report it failed). */
  private async reloadFor(domain: string): Promise<CheckResult> {
    const hooks = await readTestHooks(this.layout);
    if (hooks.slowReloadMs) await new Promise((r) => setTimeout(r, hooks.slowReloadMs));
    if (hooks.failReload?.includes(domain))
      return { ok: false, output: 'reload failure injected by a test hook' };
    return this.apache.reload();
  }

  /**
   * Reloads (or restarts, if the failed reload killed it) Apache on the restored config. Returns
   * '' when Apache runs again, else a sentence for the admin naming what keeps it down (traced
   * from `failure`, the error that made PonIO roll back, and the restart's own output).
   */
  private async reloadAfterRollback(failure: unknown): Promise<string> {
    const r = await this.apache.reload().catch((err: unknown) => ({ ok: false, output: String(err) }));
    if (r.ok) return '';
    this.logger.error({ output: r.output }, 'Apache did not reload after a rollback');
    const t = await this.apache.configTest().catch(() => null);
    if (t !== null && !t.ok)
      return `PonIO's change was rolled back, but Apache did not come back: ${t.output}`;
    const seen = `${failure instanceof Error ? failure.message : String(failure)}\n${r.output}`;
    const blamed = [...new Set(filesBlamed(seen, t?.logs ?? []).map((l) => l.file))];
    const who =
      blamed.length > 0
        ? ` It cannot open a log named in ${blamed.join(', ')}: fix or remove that file.`
        : '';
    return `PonIO's change was rolled back, but Apache did not come back: ${r.output}${who}`;
  }

  // --- crash recovery ---------------------------------------------------------------------

  private async writeJournal(p: PendingCreate): Promise<void> {
    await fsp.mkdir(this.layout.stateDir, { recursive: true, mode: 0o700 });
    await atomicWrite(this.journalFile, JSON.stringify(p), { mode: 0o600 });
  }

  private async clearJournal(): Promise<void> {
    await fsp.rm(this.journalFile, { force: true });
  }

  /**
   * Finishes a `create website` a killed agent left: if its vhost is enabled, the live config is
   * the one the checker accepted (the link is made only after the test) and the site is kept;
   * otherwise nothing of it is live and its vhost file and new directories are removed.
   */
  async recover(): Promise<void> {
    const text = await readIfExists(this.journalFile);
    if (text === null) return;
    let pending: PendingCreate | null = null;
    try {
      const v = JSON.parse(text) as PendingCreate;
      const d = validateDomain(v.domain);
      if (v.op === 'create' && d.ok && d.value === v.domain && Array.isArray(v.willCreate)) pending = v;
    } catch {
      /* unreadable: nothing to do but drop it */
    }
    if (pending) {
      const link = this.enabledLink(pending.domain);
      if (await exists(link)) {
        this.logger.warn({ domain: pending.domain }, 'an interrupted create had gone live: site kept');
      } else {
        const paths = await sitePaths(this.apache.wwwRoot, pending.domain);
        const allowed = new Set([
          paths.siteDir,
          paths.docroot,
          paths.logDir,
          path.join(paths.docroot, 'index.html'),
        ]);
        await fsp.rm(this.vhostFile(pending.domain), { force: true });
        await removeCreated(pending.willCreate.filter((p) => allowed.has(p)));
        this.logger.warn({ domain: pending.domain }, 'an interrupted create was rolled back');
      }
    }
    await this.clearJournal();
  }
}
