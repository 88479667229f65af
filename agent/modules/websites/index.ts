import { createApacheHost } from './apache.ts';
import { createPhpFpmHost } from './php-fpm.ts';
import { SitePhp } from './site-php.ts';
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
  const apache = createApacheHost(ctx.layout, ctx.exec, ctx.logger);
  const fpm = createPhpFpmHost(ctx.layout, ctx.exec, ctx.logger);
  const service = new WebsitesService(apache, ctx.layout, ctx.logger, new SitePhp(fpm, ctx.exec), (d) =>
    ctx.siteOwners?.changed(d),
  );
  return {
    name: 'websites',
    availability: () => apache.availability(),
    async start() {
      await apache.prepare();
      // php-fpm first: the pools' sockets exist when Apache sends them requests.
      // A php-fpm that cannot start (a pool an admin broke) must not take the static sites down:
      // PHP requests then fail (503) and the reason is logged.
      await fpm
        .start()
        .catch((e: unknown) =>
          ctx.logger.error({ err: (e as Error).message }, 'php-fpm did not start; PHP sites answer 503'),
        );
      await apache.start();
    },
    stop: async () => {
      await apache.stop();
      await fpm.stop();
    },
    service: () => apache.service(),
    recover: (_event, intent) => service.recover(intent),
    writesIn: () => [apache.sitesAvailable, apache.sitesEnabled, apache.wwwRoot, ...fpm.writesIn()],
    backupSource: { sites: siteBackupSource(service, apache.wwwRoot) },
    handlers: {
      'list websites': () => service.list(),
      'create website': (req, call) => service.create(req, call),
      'set website php': (req, call) => service.setPhp(req, call),
      'enable website': (req, call) => service.enable(req.domain, call),
      'disable website': (req, call) => service.disable(req.domain, call),
      'delete website': (req, call) => service.delete(req.domain, req.removeFiles === true, call),
    },
  };
}
