import { X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData, RequestOf } from '../../../shared/protocol/index.ts';
import type { Website } from '../../../shared/protocol/events/websites.ts';
import { domainForDisplay, validateDomain } from '../../../shared/validate/domain.ts';
import { atomicWrite, fsyncDir, readIfExists, resolveUnder, tempNameFor } from '../../os/files.ts';
import { killPoint } from '../../journal/kill-point.ts';
import type { HostLayout } from '../../os/layout.ts';
import type { ApacheHost, CheckResult } from './apache.ts';
import { filesBlamed } from './apache-startcheck.ts';
import {
  createSiteTree,
  removeCreated,
  removeSiteTree,
  siteOwner,
  sitePaths,
  type SitePaths,
} from './site-tree.ts';
import type { SitePhp, PhpPlan } from './site-php.ts';
import { tmpDirOf } from './site-php.ts';
import {
  applySiteChange,
  settleSiteChange,
  siteChangeSchema,
  type FileChange,
  type SiteChange,
} from './site-change.ts';
import { siteUserName } from './php-pool.ts';
import type { PhpVersion } from '../../../shared/protocol/events/websites.ts';
import { readTestHooks } from './test-hooks.ts';
import { parseVhost, renderVhost, type ParsedVhost, type VhostMeta, type VhostSpec } from './vhost.ts';
import { challengeDirOf } from './acme.ts';
import { newCertId, type SiteTls } from './site-tls.ts';
import { checkUpload } from './tls-check.ts';
import { VhostCache } from './vhost-cache.ts';
import { z } from 'zod';
import { noChange, noProgress, type ChangeContext, type Progress, type Recovered } from '../types.ts';

interface Entry {
  /** File name, e.g. `example.com.conf`. */
  name: string;
  /** Where the vhost lives (sites-available, or sites-enabled for a file only found there). */
  file: string;
  inAvailable: boolean;
  enabled: boolean;
  parsed: ParsedVhost;
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
  const tmp = tempNameFor(link);
  await fsp.symlink(target, tmp);
  killPoint();
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
    private readonly php: SitePhp,
    /** The FTP users of a site follow its owner (ModuleContext.siteOwners). */
    private readonly ownerChanged: (domain: string) => void = () => undefined,
    private readonly tls: SiteTls | null = null,
    /** Broadcast to the connected panels (a failed issuance or renewal). */
    private readonly notify: (topic: string, data: unknown) => void = () => undefined,
  ) {}

  private get challengeDir(): string {
    return challengeDirOf(this.apache.wwwRoot);
  }

  private requireTls(): SiteTls {
    if (!this.tls) throw new RpcError('unsupported', 'HTTPS is not set up on this host.');
    return this.tls;
  }

  /** The HTTPS part of a vhost spec for a site's meta. */
  private tlsSpec(domain: string, h: NonNullable<VhostMeta['https']>): NonNullable<VhostSpec['https']> {
    const p = this.requireTls().paths(domain, h.id);
    return {
      ...h,
      certFile: p.cert,
      keyFile: p.key,
      listen: this.apache.httpsListen,
      portSuffix: this.apache.httpsPortSuffix,
    };
  }

  /** The vhost of a managed site as its metadata says, with `over` changed. */
  private specFor(
    domain: string,
    parsed: ParsedVhost,
    paths: SitePaths,
    over: Partial<VhostSpec>,
  ): VhostSpec {
    const base: VhostSpec = {
      domain,
      aliases: parsed.aliases,
      adminEmail: parsed.adminEmail,
      docroot: paths.docroot,
      logDir: paths.logDir,
      listen: this.apache.vhostListen,
      challengeDir: this.challengeDir,
    };
    if (parsed.php) base.php = parsed.php;
    if (parsed.owner !== undefined && parsed.owner !== null) base.owner = parsed.owner;
    if (parsed.https) base.https = this.tlsSpec(domain, parsed.https);
    return { ...base, ...over };
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
      php: e.parsed.php ? this.withPoolFile(e.parsed.php, e.parsed.serverName ?? '') : null,
      owner: e.parsed.owner ?? null,
    };
  }

  private withPoolFile(php: NonNullable<ParsedVhost['php']>, domain: string): NonNullable<Website['php']> {
    const poolFile = validateDomain(domain).ok ? this.poolFileOf(domain, php.version as PhpVersion) : null;
    return { ...php, ...(poolFile !== null ? { poolFile } : {}) };
  }

  /** toWebsite plus the HTTPS state (certificate facts, renewal, last error). */
  private async describe(e: Entry): Promise<Website> {
    const w = this.toWebsite(e);
    const h = e.parsed.managed ? e.parsed.https : undefined;
    if (!h || !this.tls || w.domain === '') return w;
    const url = this.apache.httpsUrl();
    return { ...w, https: await this.tls.describe(w.domain, h, url) };
  }

  async list(): Promise<ReplyData<'list websites'>> {
    const url = this.apache.url();
    const why = this.php.fpm.unavailable();
    return {
      websites: await Promise.all((await this.scan()).map((e) => this.describe(e))),
      ...(url !== undefined ? { url } : {}),
      phpVersions: this.php.versions(),
      ...(why !== undefined ? { phpUnavailable: why } : {}),
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
  // Each records its intent (agent/journal) before its first change; recover() completes or
  // undoes it after a kill: create and enable/disable roll forward once the link is in its new
  // state (the live config is then one the checker accepted), back before; delete rolls forward.

  async create(req: RequestOf<'create website'>, ctx: ChangeContext = noChange): Promise<Website> {
    const progress = (m: string): void => ctx.progress(m);
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

    const plan = this.php.plan(domain, req.php, req.phpSettings);
    if (plan) this.requireApacheModule('proxy_fcgi');
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
      challengeDir: this.challengeDir,
      corrupt: hooks.corruptVhost?.includes(domain) === true,
      ...(plan ? { php: phpMeta(plan), owner: plan.user } : {}),
    });
    const owner = await siteOwner();
    const treeExisted = await exists(paths.siteDir);

    // The intent names what this create may leave behind, so a killed agent cleans up on start.
    const willCreate: string[] = [];
    for (const p of [paths.siteDir, paths.docroot, paths.logDir, path.join(paths.docroot, 'index.html')])
      if (!(await exists(p))) willCreate.push(p);
    const phpIntent = plan
      ? {
          user: plan.user,
          userExisted: await this.php.userExists(plan.user),
          treeExisted,
          poolFile: plan.poolFile,
          version: plan.version,
        }
      : null;
    await ctx.intent({ op: 'create', domain, willCreate, php: phpIntent } satisfies SiteIntent);

    let created: string[] = [];
    let linked = false;
    let userTouched = false;
    const undo = async (): Promise<void> => {
      if (linked) await removeLink(link);
      await fsp.rm(vhostFile, { force: true });
      if (phpIntent) {
        await this.undoCreatePhp(domain, paths, phpIntent, created, userTouched);
      }
      await removeCreated(created);
    };
    try {
      progress(`Creating the site tree and the vhost of ${domain}`);
      let siteOwnerNow = owner;
      if (plan) {
        userTouched = true;
        siteOwnerNow = (await this.php.ensureUser(plan.user, domain, paths)).owner;
        killPoint();
      }
      created = await createSiteTree(paths, domain, domainForDisplay(domain), siteOwnerNow);
      killPoint();
      if (plan && siteOwnerNow) {
        await this.php.giveTree(paths, siteOwnerNow);
        created.push(tmpDirOf(paths));
        progress(`Writing the php-fpm pool of ${domain} (PHP ${plan.version})`);
        await atomicWrite(
          plan.poolFile,
          this.php.poolText(domain, plan, paths, hooks.corruptPool?.includes(domain) === true),
        );
        progress(`Testing and reloading php${plan.version}-fpm`);
        await this.php.testAndReload(plan.version);
        killPoint();
      }
      // Not live yet: Apache reads sites-enabled only.
      await atomicWrite(vhostFile, text, { mode: 0o644 });
      progress('Testing the Apache configuration');
      const test = await this.apache.configTest(vhostFile);
      if (!test.ok) throw checkerFailed('Apache config test failed', test);
      // From here on, the live config is one the checker accepted.
      await atomicSymlink(path.relative(this.apache.sitesEnabled, vhostFile), link);
      linked = true;
      killPoint();
      progress('Reloading Apache');
      const r = await this.reloadFor(domain);
      if (!r.ok) throw checkerFailed('Apache did not reload', r);
    } catch (e) {
      progress('Rolling back');
      await undo();
      const note = linked ? await this.reloadAfterRollback(e) : '';
      throw withNote(e, note);
    }
    this.logger.info({ domain, php: plan?.version ?? null }, 'website created');
    return this.toWebsite({
      name: `${domain}.conf`,
      file: vhostFile,
      inAvailable: true,
      enabled: true,
      parsed: parseVhost(text, domain),
    });
  }

  /** Undoes the PHP part of a create: pool (and its reload), the tree's hand-over, the user. */
  private async undoCreatePhp(
    domain: string,
    paths: SitePaths,
    it: NonNullable<CreateIntent['php']>,
    created: readonly string[],
    userTouched: boolean,
  ): Promise<void> {
    if (await exists(it.poolFile)) {
      await fsp.rm(it.poolFile, { force: true });
      const note = await this.php.reloadQuietly(it.version);
      if (note !== '') this.logger.warn({ note }, 'php-fpm did not reload after a rollback');
    }
    if (it.treeExisted && (await exists(paths.siteDir)) && !created.includes(paths.siteDir))
      await this.php.returnTree(paths);
    if (userTouched && !it.userExisted) await this.php.removeUser(it.user, domain);
  }

  private requireApacheModule(name: string): void {
    if (!this.apache.moduleEnabled(name))
      throw new RpcError(
        'failed-precondition',
        `PHP per site needs Apache's mod_${name}; enable it first (a2enmod ${name}).`,
      );
  }

  /**
   * Turns PHP on for a site (its own user and pool), changes its version or settings, or turns
   * it off (the pool goes; the files stay the site user's). See site-change.ts for the sequence.
   */
  async setPhp(req: RequestOf<'set website php'>, ctx: ChangeContext = noChange): Promise<Website> {
    const { domain } = req;
    const e = await this.findManaged(domain);
    const plan = this.php.plan(domain, req.php, req.phpSettings);
    if (plan) this.requireApacheModule('proxy_fcgi');
    const old = e.parsed.php ?? null;
    const oldVersion = old?.version as PhpVersion | undefined;
    const unchanged =
      (plan === null && old === null) ||
      (plan !== null &&
        old !== null &&
        plan.version === old.version &&
        JSON.stringify(plan.settings) === JSON.stringify(old.settings));
    if (unchanged) return this.toWebsite(e);
    const hooks = await readTestHooks(this.layout);
    const paths = await sitePaths(this.apache.wwwRoot, domain);
    const before = await fsp.readFile(e.file, 'utf8');
    const owner = plan ? plan.user : (e.parsed.owner ?? null);
    const after = renderVhost(
      this.specFor(domain, e.parsed, paths, {
        corrupt: hooks.corruptVhost?.includes(domain) === true,
        php: plan ? phpMeta(plan) : null,
        owner,
      }),
    );
    const files: FileChange[] = [];
    const pre: string[] = [];
    const post: string[] = [];
    const oldPool = oldVersion !== undefined ? this.poolFileOf(domain, oldVersion) : null;
    if (plan) {
      const text = this.php.poolText(domain, plan, paths, hooks.corruptPool?.includes(domain) === true);
      files.push({
        path: plan.poolFile,
        before: await readIfExists(plan.poolFile),
        after: text,
        phase: 'pre',
      });
      pre.push(plan.version);
    }
    if (oldPool !== null && oldVersion !== undefined && oldPool !== plan?.poolFile) {
      files.push({ path: oldPool, before: await readIfExists(oldPool), after: null, phase: 'post' });
      post.push(oldVersion);
    }
    const change: SiteChange = {
      op: 'change',
      domain,
      vhost: { path: e.file, before, after },
      files,
      fpm: { pre, post },
      owner:
        plan && (e.parsed.owner ?? null) === null
          ? { user: plan.user, userExisted: await this.php.userExists(plan.user), treeWasWww: true }
          : null,
    };
    await applySiteChange(change, this.changeDeps(domain, paths, ctx));
    if (change.owner) this.ownerChanged(domain);
    this.logger.info({ domain, php: plan?.version ?? null }, 'website PHP changed');
    return this.toWebsite({ ...e, parsed: parseVhost(after, domain) });
  }

  private poolFileOf(domain: string, version: PhpVersion): string | null {
    if (!this.php.versions().includes(version)) return null;
    return resolveUnder(this.php.fpm.poolDir(version), `${siteUserName(domain)}.conf`);
  }

  private changeDeps(domain: string, paths: SitePaths, ctx: ChangeContext) {
    return {
      apache: this.apache,
      php: this.php,
      logger: this.logger,
      paths,
      progress: (m: string) => ctx.progress(m),
      intent: (d: unknown) => ctx.intent(d),
      reload: () => this.reloadFor(domain),
      reloadAfterRollback: (f: unknown) => this.reloadAfterRollback(f),
      checkerFailed,
    };
  }

  // --- HTTPS -------------------------------------------------------------------------------

  /**
   * HTTPS for a site: a certificate from the ACME CA (issued inside this call: a refusal leaves
   * the host as it was) or an uploaded one (key matches, chain valid, names cover the site), an
   * HTTPS vhost, redirect and HSTS options; or HTTPS off. Applied by site-change.ts.
   */
  async setHttps(req: RequestOf<'set website https'>, ctx: ChangeContext = noChange): Promise<Website> {
    const tls = this.requireTls();
    const { domain } = req;
    const e = await this.findManaged(domain);
    const on = req.https !== 'off';
    if (req.https !== 'own' && (req.certificate !== undefined || req.key !== undefined))
      throw new RpcError('invalid-argument', 'A certificate and key are uploaded only with https: own.');
    if (!on && (req.redirect === true || req.hsts === true))
      throw new RpcError('invalid-argument', 'Redirect and HSTS need HTTPS (https is off).');
    if (on) this.requireApacheModule('ssl');
    if (req.hsts === true) this.requireApacheModule('headers');
    const names = [domain, ...e.parsed.aliases];
    const old = e.parsed.https;
    const oldPaths = old ? tls.paths(domain, old.id) : null;
    let issued: { cert: string; key: string } | null = null;
    if (req.https === 'own') {
      if (req.certificate === undefined || req.key === undefined)
        throw new RpcError('invalid-argument', 'https: own needs the certificate chain and its private key.');
      const ok = checkUpload(req.certificate, req.key, names);
      issued = { cert: ok.chain, key: ok.key };
    } else if (req.https === 'acme') {
      const reuse =
        old?.mode === 'acme' &&
        oldPaths !== null &&
        !(await tls.due(domain, old.id)) &&
        (await this.certCovers(oldPaths.cert, names));
      if (!reuse) {
        await this.ensureChallengeAlias(e, ctx);
        issued = await this.issueFor(domain, names, ctx);
      }
    }
    if (!on && !old) return this.describe(e);
    const id = issued ? newCertId() : (old?.id ?? newCertId());
    const meta =
      req.https === 'off'
        ? undefined
        : { mode: req.https, redirect: req.redirect ?? false, hsts: req.hsts ?? false, id };
    const paths = await sitePaths(this.apache.wwwRoot, domain);
    const current = (await this.findManaged(domain)).parsed;
    const before = await fsp.readFile(e.file, 'utf8');
    const spec = this.specFor(domain, current, paths, {});
    if (meta) spec.https = this.tlsSpec(domain, meta);
    else delete spec.https;
    const after = renderVhost(spec);
    const files: FileChange[] = [];
    const staged = new Map<string, string>();
    try {
      if (issued) files.push(...(await this.certFiles(domain, issued, id, staged)));
      // The files the vhost no longer names go after it switched.
      if (oldPaths && (issued || !on)) files.push(...(await this.oldCertFiles(domain, oldPaths, staged)));
      await this.applyTlsChange(domain, paths, ctx, { path: e.file, before, after }, files, staged);
    } finally {
      await tls.dropStaged(domain);
    }
    if (issued && req.https === 'acme') await tls.record(domain, null);
    this.logger.info({ domain, https: req.https }, 'website HTTPS changed');
    const done = (await this.scan()).find((x) => x.name === `${domain}.conf`);
    return done ? this.describe(done) : this.toWebsite(e);
  }

  /** Renews a site's ACME certificate now; the new one is served once this returns. */
  async renew(domain: string, ctx: ChangeContext = noChange): Promise<Website> {
    const tls = this.requireTls();
    const e = await this.findManaged(domain);
    if (e.parsed.https?.mode !== 'acme')
      throw new RpcError('failed-precondition', `${domain} has no certificate from the ACME CA to renew.`);
    await this.ensureChallengeAlias(e, ctx);
    const issued = await this.issueFor(domain, [domain, ...e.parsed.aliases], ctx);
    const paths = await sitePaths(this.apache.wwwRoot, domain);
    const current = (await this.findManaged(domain)).parsed;
    const h = current.https;
    if (!h) throw new RpcError('failed-precondition', `${domain} no longer has HTTPS.`);
    const before = await fsp.readFile(e.file, 'utf8');
    const id = newCertId();
    const spec = this.specFor(domain, current, paths, {});
    spec.https = this.tlsSpec(domain, { ...h, id });
    const after = renderVhost(spec);
    try {
      const staged = new Map<string, string>();
      const files = [
        ...(await this.certFiles(domain, issued, id, staged)),
        ...(await this.oldCertFiles(domain, tls.paths(domain, h.id), staged)),
      ];
      await this.applyTlsChange(domain, paths, ctx, { path: e.file, before, after }, files, staged);
    } finally {
      await tls.dropStaged(domain);
    }
    await tls.record(domain, null);
    this.logger.info({ domain }, 'website certificate renewed');
    return this.describe(e);
  }

  /** The managed sites whose ACME certificate is due (the agent's renewal timer). */
  /** A vhost switch of set website https / renew with its certificate files, as one change. */
  private applyTlsChange(
    domain: string,
    paths: SitePaths,
    ctx: ChangeContext,
    vhost: { path: string; before: string; after: string },
    files: FileChange[],
    staged: Map<string, string>,
  ): Promise<void> {
    return applySiteChange(
      { op: 'change', domain, vhost, files, fpm: { pre: [], post: [] }, owner: null },
      this.changeDeps(domain, paths, ctx),
      staged,
    );
  }

  async dueForRenewal(): Promise<string[]> {
    if (!this.tls) return [];
    const out: string[] = [];
    for (const e of await this.scan()) {
      const d = e.parsed.serverName;
      if (!e.parsed.managed || e.parsed.https?.mode !== 'acme' || d === null) continue;
      if (await this.tls.due(d, e.parsed.https.id)) out.push(d);
    }
    return out;
  }

  private async issueFor(
    domain: string,
    names: string[],
    ctx: ChangeContext,
  ): Promise<{ cert: string; key: string }> {
    const tls = this.requireTls();
    ctx.progress(`Requesting a certificate for ${names.join(', ')} from ${tls.issuer.directoryUrl}`);
    try {
      return await tls.issuer.issue(names);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await tls.record(domain, message);
      this.notify('website certificate failed', { domain, message });
      throw err;
    }
  }

  /** The file changes that install a certificate and key (the key through a staged 0600 copy). */
  /** The new certificate and key files (new names; the key through a staged 0600 copy). */
  private async certFiles(
    domain: string,
    issued: { cert: string; key: string },
    id: string,
    staged: Map<string, string>,
  ): Promise<FileChange[]> {
    const tls = this.requireTls();
    const cp = tls.paths(domain, id);
    await fsp.mkdir(cp.dir, { recursive: true, mode: 0o700 });
    const copy = await tls.stagedName(domain);
    staged.set(copy, issued.key);
    return [
      { path: cp.cert, before: null, after: issued.cert, phase: 'pre', mode: 0o644 },
      { path: cp.key, before: null, after: copy, phase: 'pre', mode: 0o600, ref: true },
    ];
  }

  /** Removal of the files of the certificate the vhost named before (after it switched). */
  private async oldCertFiles(
    domain: string,
    old: { cert: string; key: string },
    staged: Map<string, string>,
  ): Promise<FileChange[]> {
    const tls = this.requireTls();
    const oldKey = await readIfExists(old.key);
    const copy = oldKey === null ? null : await tls.stagedName(domain);
    if (copy !== null && oldKey !== null) staged.set(copy, oldKey);
    return [
      { path: old.cert, before: await readIfExists(old.cert), after: null, phase: 'post' },
      { path: old.key, before: copy, after: null, phase: 'post', mode: 0o600, ref: true },
    ];
  }

  private async certCovers(file: string, names: readonly string[]): Promise<boolean> {
    const text = await readIfExists(file);
    if (text === null) return false;
    try {
      const c = new X509Certificate(text);
      return names.every((n) => c.checkHost(n) !== undefined);
    } catch {
      return false;
    }
  }

  /**
   * A vhost written before HTTPS support has no alias for the ACME challenges: re-render it (the
   * same site, plus the alias) before asking the CA, as its own checked change.
   */
  private async ensureChallengeAlias(e: Entry, ctx: ChangeContext): Promise<void> {
    const before = await fsp.readFile(e.file, 'utf8');
    if (before.includes('/.well-known/acme-challenge/')) return;
    const domain = e.parsed.serverName ?? '';
    const paths = await sitePaths(this.apache.wwwRoot, domain);
    const after = renderVhost(this.specFor(domain, e.parsed, paths, {}));
    await applySiteChange(
      {
        op: 'change',
        domain,
        vhost: { path: e.file, before, after },
        files: [],
        fpm: { pre: [], post: [] },
        owner: null,
      },
      this.changeDeps(domain, paths, ctx),
    );
  }

  async enable(domain: string, ctx: ChangeContext = noChange): Promise<Website> {
    const progress = (m: string): void => ctx.progress(m);
    const e = await this.findManaged(domain);
    if (e.enabled) return this.toWebsite(e);
    const link = this.enabledLink(domain);
    progress('Testing the Apache configuration');
    const test = await this.apache.configTest(e.file);
    if (!test.ok) throw checkerFailed('Apache config test failed', test);
    await ctx.intent({ op: 'enable', domain } satisfies SiteIntent);
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

  /** What sites-enabled holds for a domain: a symlink's target, or a file's bytes (to restore). */
  private async linkState(domain: string): Promise<{ target: string | null; content: string | null }> {
    const link = this.enabledLink(domain);
    const st = await fsp.lstat(link);
    const target = st.isSymbolicLink() ? await fsp.readlink(link) : null;
    const content = target === null ? await fsp.readFile(link, 'base64') : null;
    return { target, content };
  }

  private async restoreLink(
    domain: string,
    saved: { target: string | null; content: string | null },
  ): Promise<void> {
    const link = this.enabledLink(domain);
    if (saved.target !== null) await atomicSymlink(saved.target, link);
    else if (saved.content !== null) await atomicWrite(link, Buffer.from(saved.content, 'base64'));
  }

  /** Takes a site out of sites-enabled, checks and reloads; restores the link on any failure. */
  private async unlink(
    domain: string,
    saved: { target: string | null; content: string | null },
    progress: Progress,
  ): Promise<void> {
    await removeLink(this.enabledLink(domain));
    progress('Testing the Apache configuration');
    const test = await this.apache.configTest();
    if (!test.ok) {
      await this.restoreLink(domain, saved);
      throw checkerFailed('Apache config test failed', test);
    }
    progress('Reloading Apache');
    const r = await this.reloadFor(domain);
    if (!r.ok) {
      progress('Rolling back');
      await this.restoreLink(domain, saved);
      throw withNote(checkerFailed('Apache did not reload', r), await this.reloadAfterRollback(r.output));
    }
  }

  async disable(domain: string, ctx: ChangeContext = noChange): Promise<Website> {
    const e = await this.findManaged(domain);
    if (!e.enabled) return this.toWebsite(e);
    const saved = await this.linkState(domain);
    await ctx.intent({ op: 'disable', domain, link: saved } satisfies SiteIntent);
    await this.unlink(domain, saved, (m) => ctx.progress(m));
    this.logger.info({ domain }, 'website disabled');
    return this.toWebsite({ ...e, enabled: false });
  }

  async delete(
    domain: string,
    removeFiles: boolean,
    ctx: ChangeContext = noChange,
  ): Promise<ReplyData<'delete website'>> {
    const progress = (m: string): void => ctx.progress(m);
    const e = await this.findManaged(domain);
    // Resolve (and guard) the site tree before changing anything: a refused tree (e.g. a symlink
    // planted in place of the site directory) fails the call with the site still intact.
    const tree = removeFiles ? await sitePaths(this.apache.wwwRoot, domain) : null;
    const saved = e.enabled ? await this.linkState(domain) : null;
    const treeExists = tree !== null && (await exists(tree.siteDir));
    const php = e.parsed.php?.version ?? null;
    const owner = e.parsed.owner ?? null;
    await ctx.intent({
      op: 'delete',
      domain,
      link: saved,
      removeFiles,
      treeExists,
      php,
      owner,
    } satisfies SiteIntent);
    if (saved) await this.unlink(domain, saved, progress);
    // No longer live: removing the file cannot affect Apache.
    await this.removeVhost(domain);
    await this.removePool(domain, php, progress);
    let filesRemoved = false;
    if (tree) {
      progress(`Removing the files of ${domain}`);
      filesRemoved = await removeSiteTree(tree);
      killPoint();
    }
    await this.removeOwner(domain, owner, progress);
    this.logger.info({ domain, filesRemoved }, 'website deleted');
    return { domain, filesRemoved };
  }

  /**
   * After a site is gone from Apache: its pool (and the reload that stops its workers), then its
   * own user; files that are kept go back to www-data first (no file is left to a uid nobody has).
   */
  private async removePool(domain: string, php: string | null, progress: Progress): Promise<void> {
    if (php !== null) {
      const pool = this.poolFileOf(domain, php as PhpVersion);
      if (pool !== null && (await exists(pool))) {
        progress(`Removing the php-fpm pool of ${domain}`);
        await fsp.rm(pool, { force: true });
        await fsyncDir(path.dirname(pool));
        killPoint();
        const note = await this.php.reloadQuietly(php);
        if (note !== '') this.logger.warn({ note }, 'php-fpm did not reload after a site was deleted');
      }
    }
  }

  private async removeOwner(domain: string, owner: string | null, progress: Progress): Promise<void> {
    if (owner !== null) {
      const paths = await sitePaths(this.apache.wwwRoot, domain);
      if (await exists(paths.siteDir)) await this.php.returnTree(paths);
      killPoint();
      progress(`Removing the site user ${owner}`);
      await this.php.removeUser(owner, domain);
    }
  }

  private async removeVhost(domain: string): Promise<void> {
    const file = this.vhostFile(domain);
    await fsp.rm(file, { force: true });
    await fsyncDir(path.dirname(file));
    killPoint();
  }

  /** The graceful reload after a change to `domain` (a sandbox test hook may report it failed). */
  private async reloadFor(domain: string): Promise<CheckResult> {
    const hooks = await readTestHooks(this.layout);
    if (hooks.slowReloadMs) await new Promise((r) => setTimeout(r, hooks.slowReloadMs));
    if (hooks.failReload?.includes(domain))
      return { ok: false, output: 'reload failure injected by a test hook' };
    const r = await this.apache.reload();
    killPoint();
    return r;
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

  // --- backups (agent/modules/backups through backup-source.ts) ------------------------------

  /** The domains of the managed sites. */
  async managedDomains(): Promise<string[]> {
    return (await this.scan())
      .filter((e) => e.parsed.managed && e.inAvailable)
      .map((e) => e.name.slice(0, -'.conf'.length));
  }

  /** A managed site's vhost file, or null. */
  async managedVhost(domain: string): Promise<string | null> {
    const e = (await this.scan()).find((x) => x.name === `${domain}.conf` && x.inAvailable);
    return e?.parsed.managed === true ? e.file : null;
  }

  /** A managed site's php-fpm pool file, or null when it has no PHP. */
  async poolFileOfSite(domain: string): Promise<string | null> {
    const e = (await this.scan()).find((x) => x.name === `${domain}.conf` && x.inAvailable);
    const php = e?.parsed.managed === true ? e.parsed.php : null;
    return php ? this.poolFileOf(domain, php.version as PhpVersion) : null;
  }

  /** A managed site's php-fpm pool file when it has PHP (and the file is there), else null. */
  async sitePoolFile(domain: string): Promise<string | null> {
    const e = (await this.scan()).find((x) => x.name === `${domain}.conf` && x.inAvailable);
    const version = e?.parsed.managed === true ? e.parsed.php?.version : undefined;
    const pool = version !== undefined ? this.poolFileOf(domain, version as PhpVersion) : null;
    return pool !== null && (await exists(pool)) ? pool : null;
  }

  /** The site tree of a domain (path guard; need not exist). */
  async treeOf(domain: string): Promise<string> {
    return (await sitePaths(this.apache.wwwRoot, domain)).siteDir;
  }

  /** A managed site's vhost bytes and sites-enabled entry (what detach() takes away), or null. */
  async savedVhost(domain: string): Promise<SavedVhost | null> {
    const file = await this.managedVhost(domain);
    if (file === null) return null;
    const text = await fsp.readFile(file, 'utf8');
    const link = (await exists(this.enabledLink(domain))) ? await this.linkState(domain) : null;
    return { text, link };
  }

  /**
   * Takes a site's vhost and link out of Apache's files without a reload (a restore puts another
   * one in place before reloading).
   */
  async detach(domain: string): Promise<void> {
    if (await exists(this.enabledLink(domain))) await removeLink(this.enabledLink(domain));
    await this.removeVhost(domain);
  }

  /** Puts a detached vhost back (rollback of a restore) and reloads. */
  async reattach(domain: string, saved: SavedVhost): Promise<void> {
    await atomicWrite(this.vhostFile(domain), saved.text, { mode: 0o644 });
    if (saved.link) await this.restoreLink(domain, saved.link);
    const note = await this.reloadAfterRollback('restore rolled back');
    if (note !== '') this.logger.error({ note }, 'Apache did not reload after a restore was rolled back');
  }

  /** Removes a site's vhost and link (rollback of a restore to a new name) and reloads. */
  async detachAndReload(domain: string): Promise<void> {
    if (await exists(this.enabledLink(domain))) await removeLink(this.enabledLink(domain));
    await this.removeVhost(domain);
    const note = await this.reloadAfterRollback('restore rolled back');
    if (note !== '') this.logger.error({ note }, 'Apache did not reload after a restore was rolled back');
  }

  // --- crash recovery ---------------------------------------------------------------------

  /**
   * Completes or undoes a change a killed agent left (AgentModule.recover; runs after Apache
   * started). Ends with a graceful reload, so what Apache serves matches the files.
   */
  async recover(intent: unknown): Promise<Recovered> {
    const change = siteChangeSchema.safeParse(intent);
    if (change.success) return this.recoverChange(change.data);
    const parsed = siteIntent.safeParse(intent);
    const v = parsed.success ? validateDomain(parsed.data.domain) : null;
    if (!parsed.success || !v?.ok || v.value !== parsed.data.domain)
      throw new Error('unreadable websites intent in the journal');
    const it = parsed.data;
    const out = await this.settle(it);
    const note = await this.reloadAfterRollback('recovery after the agent was stopped');
    if (note !== '')
      this.logger.error({ note }, 'Apache did not reload after settling an interrupted change');
    this.logger.warn(
      { domain: it.domain, op: it.op, outcome: out.outcome },
      'an interrupted website change was settled',
    );
    return out;
  }

  private async recoverChange(c: SiteChange): Promise<Recovered> {
    const v = validateDomain(c.domain);
    if (!v.ok || v.value !== c.domain) throw new Error('unreadable websites intent in the journal');
    const paths = await sitePaths(this.apache.wwwRoot, c.domain);
    const outcome = await settleSiteChange(c, this.changeDeps(c.domain, paths, noChange));
    await this.tls?.dropStaged(c.domain);
    if (c.owner) this.ownerChanged(c.domain);
    const note = await this.reloadAfterRollback('recovery after the agent was stopped');
    if (note !== '')
      this.logger.error({ note }, 'Apache did not reload after settling an interrupted change');
    this.logger.warn({ domain: c.domain, op: c.op, outcome }, 'an interrupted website change was settled');
    if (outcome === 'absent') return { outcome };
    const e = (await this.scan()).find((x) => x.name === `${c.domain}.conf`);
    if (!e) throw new Error(`the website ${c.domain} is gone`);
    return { outcome, data: this.toWebsite(e) };
  }

  private async settle(it: SiteIntent): Promise<Recovered> {
    const link = this.enabledLink(it.domain);
    const linked = await exists(link);
    const site = async (): Promise<Recovered> => {
      const e = (await this.scan()).find((x) => x.name === `${it.domain}.conf`);
      if (!e) throw new Error(`the website ${it.domain} is gone`);
      return { outcome: 'applied', data: this.toWebsite(e) };
    };
    switch (it.op) {
      case 'create': {
        if (linked && (await exists(this.vhostFile(it.domain)))) {
          if (it.php) await this.php.reloadQuietly(it.php.version);
          return site();
        }
        // Nothing of it is live: remove its link (if any), vhost and the directories it made.
        if (linked) await removeLink(link);
        const paths = await sitePaths(this.apache.wwwRoot, it.domain);
        const allowed = new Set([
          paths.siteDir,
          paths.docroot,
          paths.logDir,
          path.join(paths.docroot, 'index.html'),
        ]);
        await this.removeVhost(it.domain);
        const made = it.willCreate.filter((p) => allowed.has(p));
        if (it.php) {
          const pool = this.poolFileOf(it.domain, it.php.version as PhpVersion);
          await this.undoCreatePhp(
            it.domain,
            paths,
            { ...it.php, poolFile: pool ?? it.php.poolFile },
            made,
            true,
          );
        }
        await removeCreated(made);
        return { outcome: 'absent' };
      }
      case 'enable':
        return linked ? site() : { outcome: 'absent' };
      case 'disable': {
        if (linked) return { outcome: 'absent' };
        const test = await this.apache.configTest();
        if (test.ok) return site();
        await this.restoreLink(it.domain, it.link);
        return { outcome: 'absent' };
      }
      case 'delete': {
        // Rolls forward: the site was being taken away; finish unless its removal breaks the config.
        if (!(await exists(this.vhostFile(it.domain)))) {
          if (linked) await removeLink(link);
        } else {
          if (linked) await removeLink(link);
          const test = await this.apache.configTest();
          if (!test.ok) {
            if (it.link) await this.restoreLink(it.domain, it.link);
            return { outcome: 'absent' };
          }
          await this.removeVhost(it.domain);
        }
        await this.removePool(it.domain, it.php ?? null, noProgress);
        if (it.removeFiles) await removeSiteTree(await sitePaths(this.apache.wwwRoot, it.domain));
        await this.removeOwner(it.domain, it.owner ?? null, noProgress);
        return {
          outcome: 'applied',
          data: { domain: it.domain, filesRemoved: it.removeFiles && it.treeExists },
        };
      }
    }
  }
}

/** A vhost taken out by detach(): its bytes and its sites-enabled entry. */
export const savedVhostSchema = z.strictObject({
  text: z.string(),
  link: z.strictObject({ target: z.string().nullable(), content: z.string().nullable() }).nullable(),
});
export type SavedVhost = z.infer<typeof savedVhostSchema>;

const phpMeta = (plan: PhpPlan) => ({ version: plan.version, settings: plan.settings, socket: plan.socket });

const savedLink = z.strictObject({ target: z.string().nullable(), content: z.string().nullable() });
/** What a websites mutation records before its first change (see recover()). */
const siteIntent = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('create'),
    domain: z.string(),
    willCreate: z.array(z.string()),
    php: z
      .strictObject({
        user: z.string(),
        userExisted: z.boolean(),
        treeExisted: z.boolean(),
        poolFile: z.string(),
        version: z.string(),
      })
      .nullable()
      .optional(),
  }),
  z.strictObject({ op: z.literal('enable'), domain: z.string() }),
  z.strictObject({ op: z.literal('disable'), domain: z.string(), link: savedLink }),
  z.strictObject({
    op: z.literal('delete'),
    domain: z.string(),
    link: savedLink.nullable(),
    removeFiles: z.boolean(),
    treeExists: z.boolean(),
    php: z.string().nullable().optional(),
    owner: z.string().nullable().optional(),
  }),
]);
type SiteIntent = z.infer<typeof siteIntent>;
type CreateIntent = Extract<SiteIntent, { op: 'create' }>;
