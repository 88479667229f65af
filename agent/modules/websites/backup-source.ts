import { validateDomain } from '../../../shared/validate/domain.ts';
import {
  adminEmailSchema,
  phpChoiceSchema,
  phpSettingsSchema,
} from '../../../shared/protocol/events/websites.ts';
import type { SiteBackupSource } from '../types.ts';
import type { WebsitesService } from './service.ts';
import { parseVhost } from './vhost.ts';

/**
 * What the backups module may read and put back of the sites (agent/modules/backups): the files
 * of a site come from here, so there is one place that knows where a site lives. A restored
 * vhost is never the snapshot's bytes: it is rendered afresh from the values its PonIO header
 * names, validated again (a tampered repository cannot put Apache directives on the host).
 */
export function siteBackupSource(service: WebsitesService, wwwRoot: string): SiteBackupSource {
  return {
    wwwRoot,
    sites: () => service.managedDomains(),
    async files(domain) {
      const vhost = await service.managedVhost(domain);
      if (vhost === null) return null;
      // Its PHP-FPM pool, when it has one (docs/websites.md, "PHP per site").
      const pool = await service.poolFileOfSite(domain);
      return { tree: await service.treeOf(domain), vhost, extra: pool !== null ? [pool] : [] };
    },
    treeOf: (domain) => service.treeOf(domain),
    describeVhost(text) {
      const p = parseVhost(text, null);
      if (!p.managed) return null;
      const aliases: string[] = [];
      for (const a of p.aliases) {
        const v = validateDomain(a);
        if (!v.ok || v.value !== a) return null;
        aliases.push(a);
      }
      const email = p.adminEmail === null ? null : adminEmailSchema.safeParse(p.adminEmail);
      if (email !== null && !email.success) return null;
      // PHP: the version and the settings the header names, checked like a request's.
      let php: { version: string; settings: Record<string, unknown> } | null = null;
      if (p.php) {
        const version = phpChoiceSchema.safeParse(p.php.version);
        const settings = phpSettingsSchema.safeParse(p.php.settings);
        if (!version.success || !settings.success || version.data === 'none') return null;
        php = { version: version.data, settings: settings.data };
      }
      return { aliases, adminEmail: email?.data ?? null, php };
    },
    savedVhost: (domain) => service.savedVhost(domain),
    detach: (domain) => service.detach(domain),
    reattach: (domain, saved) => service.reattach(domain, saved),
    async install(domain, spec, ctx) {
      // The backups call holds the journal intent of the whole restore: create's own is not recorded.
      // A PHP site gets its own user and pool again, and its restored tree is handed to that user.
      const php = spec.php ? phpChoiceSchema.parse(spec.php.version) : undefined;
      const phpSettings = spec.php ? phpSettingsSchema.parse(spec.php.settings) : undefined;
      await service.create(
        {
          domain,
          ...(spec.aliases.length > 0 ? { aliases: spec.aliases } : {}),
          ...(spec.adminEmail ? { adminEmail: spec.adminEmail } : {}),
          ...(php !== undefined ? { php } : {}),
          ...(phpSettings !== undefined ? { phpSettings } : {}),
        },
        { progress: (m) => ctx.progress(m), intent: () => Promise.resolve() },
      );
    },
    async remove(domain) {
      // The whole site as delete website (files kept) takes it: vhost, link, pool, its own user.
      if ((await service.managedVhost(domain)) !== null)
        await service.delete(domain, false, { progress: () => undefined, intent: () => Promise.resolve() });
      await service.detachAndReload(domain);
    },
  };
}
