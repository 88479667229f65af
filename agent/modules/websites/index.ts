import { createApacheHost } from './apache.ts';
import { WebsitesService } from './service.ts';
import type { AgentModule, ModuleContext } from '../types.ts';

/**
 * Websites on Apache (issue 4): list, create, enable, disable, delete virtual hosts. The host
 * adapter (apache.ts) knows where Apache lives in system and sandbox mode; the service
 * (service.ts) applies each change safely. See docs/websites.md.
 */
export function createWebsitesModule(ctx: ModuleContext): AgentModule<'websites'> {
  const apache = createApacheHost(ctx.layout, ctx.exec, ctx.logger);
  const service = new WebsitesService(apache, ctx.layout, ctx.logger);
  const changed = (action: string, domain: string): void =>
    ctx.broadcast('websites changed', { action, domain });
  return {
    name: 'websites',
    availability: () => apache.availability(),
    async start() {
      await apache.prepare();
      await service.recover();
      await apache.start();
    },
    stop: () => apache.stop(),
    handlers: {
      'list websites': () => service.list(),
      'create website': async (req) => {
        const site = await service.create(req);
        changed('created', site.domain);
        return site;
      },
      'enable website': async (req) => {
        const site = await service.enable(req.domain);
        changed('enabled', site.domain);
        return site;
      },
      'disable website': async (req) => {
        const site = await service.disable(req.domain);
        changed('disabled', site.domain);
        return site;
      },
      'delete website': async (req) => {
        const r = await service.delete(req.domain, req.removeFiles === true);
        changed('deleted', r.domain);
        return r;
      },
    },
  };
}
