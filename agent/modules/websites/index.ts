import { createApacheHost } from './apache.ts';
import { createPhpFpmHost } from './php-fpm.ts';
import { SitePhp } from './site-php.ts';
import path from 'node:path';
import { AcmeIssuer, challengeDirOf, websitesSettingsSchema } from './acme.ts';
import { SiteTls } from './site-tls.ts';
import { WebsitesService } from './service.ts';
import { siteBackupSource } from './backup-source.ts';
import type { AgentModule, ModuleContext } from '../types.ts';
// This module's schemas (the router validates its events with them): built when it loads.
import '../../../shared/protocol/events/websites.ts';

/**
 * Websites on Apache (issue 4): list, create, enable, disable, delete virtual hosts. The host
 * adapter (apache.ts) knows where Apache lives in system and sandbox mode; the service
 * (service.ts) applies each change safely. See docs/websites.md. (No agent events: every change
 * comes through the panel, which already tells open dashboards.)
 */
export function createWebsitesModule(ctx: ModuleContext): AgentModule<'websites'> {
  const fpm = createPhpFpmHost(ctx.layout, ctx.exec, ctx.logger);
  const settings = websitesSettingsSchema.safeParse(ctx.moduleSettings?.websites);
  const settingsError = settings.success
    ? null
    : `modules.websites in the agent configuration: ${settings.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
  const acmeSettings = (settings.success ? settings.data?.acme : undefined) ?? {};
  const apache = createApacheHost(
    ctx.layout,
    ctx.exec,
    ctx.logger,
    settings.success ? settings.data?.sandboxPorts : undefined,
  );
  const tls = new SiteTls(
    path.join(ctx.layout.stateDir, 'websites/certs'),
    new AcmeIssuer(
      acmeSettings,
      path.join(ctx.layout.stateDir, 'websites/acme'),
      challengeDirOf(apache.wwwRoot),
    ),
    path.join(ctx.layout.stateDir, 'websites/tls-state'),
  );
  let renewTimer: NodeJS.Timeout | null = null;
  /** The renewal timer: due certificates are renewed through the agent's own router. */
  const renewDue = async (): Promise<void> => {
    for (const domain of await service.dueForRenewal()) {
      const r = await ctx.selfCall?.('renew website certificate', { domain });
      if (r && !r.ok) ctx.logger.error({ domain, err: r.error?.message }, 'certificate renewal failed');
    }
  };
  const service = new WebsitesService(
    apache,
    ctx.layout,
    ctx.logger,
    new SitePhp(fpm, ctx.exec),
    (d) => ctx.siteOwners?.changed(d),
    tls,
    (topic, data) => ctx.broadcast(topic, data),
  );
  return {
    name: 'websites',
    availability: () =>
      settingsError !== null ? { available: false, reason: settingsError } : apache.availability(),
    async start() {
      await apache.prepare();
      await tls.sweep();
      await tls.issuer.clearChallenges();
      // php-fpm first: the pools' sockets exist when Apache sends them requests.
      // A php-fpm that cannot start (a pool an admin broke) must not take the static sites down:
      // PHP requests then fail (503) and the reason is logged.
      await fpm
        .start()
        .catch((e: unknown) =>
          ctx.logger.error({ err: (e as Error).message }, 'php-fpm did not start; PHP sites answer 503'),
        );
      await apache.start();
      renewTimer = setInterval(() => {
        void renewDue().catch((e: unknown) =>
          ctx.logger.error({ err: (e as Error).message }, 'the certificate renewal check failed'),
        );
      }, acmeSettings.renewCheckMs ?? 3_600_000);
      renewTimer.unref();
    },
    stop: async () => {
      if (renewTimer !== null) clearInterval(renewTimer);
      await apache.stop();
      await fpm.stop();
    },
    service: () => apache.service(),
    recover: (_event, intent) => service.recover(intent),
    writesIn: () => [
      apache.sitesAvailable,
      apache.sitesEnabled,
      apache.wwwRoot,
      ...fpm.writesIn(),
      tls.stateRoot,
      tls.issuer.stateDir,
    ],
    backupSource: { sites: siteBackupSource(service, apache.wwwRoot) },
    handlers: {
      'list websites': () => service.list(),
      'create website': (req, call) => service.create(req, call),
      'set website php': (req, call) => service.setPhp(req, call),
      'set website https': (req, call) => service.setHttps(req, call),
      'renew website certificate': (req, call) => service.renew(req.domain, call),
      'enable website': (req, call) => service.enable(req.domain, call),
      'disable website': (req, call) => service.disable(req.domain, call),
      'delete website': (req, call) => service.delete(req.domain, req.removeFiles === true, call),
    },
  };
}
