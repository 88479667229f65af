import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ReadinessReport } from '../../shared/health.ts';

export interface ObservabilityRoutes {
  /** The readiness report, at most `cacheMs` old (GET /readyz may be hit every second). */
  readiness(): Promise<ReadinessReport>;
  /** The registries to serve on GET /metrics (built per scrape). */
  registries(): Promise<Registry[]>;
  /** Bearer token for /metrics; undefined turns /metrics off. */
  token: string | undefined;
  logger: Logger;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time check of `authorization: Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header ?? '');
  return m?.[1] !== undefined && timingSafeEqual(digest(m[1]), digest(token));
}

/**
 * GET /healthz (the process answers), GET /readyz (every readiness probe passes) and GET
 * /metrics (Prometheus text format, bearer token). /healthz and /readyz are public and say
 * nothing but ok / ready / not ready: which probe failed is in the panel log and in the
 * ponio_readiness_check metric.
 */
export function observabilityRouter(o: ObservabilityRoutes): Router {
  const r = Router();
  const noStore: RequestHandler = (_req, res, next) => {
    res.set('cache-control', 'no-store');
    next();
  };
  r.get('/healthz', noStore, (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  let lastFailed = '';
  r.get('/readyz', noStore, async (_req, res) => {
    const report = await o.readiness();
    const failed = report.checks
      .filter((c) => !c.ok)
      .map((c) => c.name)
      .join(', ');
    if (failed !== lastFailed) {
      if (failed) o.logger.warn({ failed }, 'panel not ready');
      else o.logger.info('panel ready again');
      lastFailed = failed;
    }
    res
      .status(report.ready ? 200 : 503)
      .type('text/plain')
      .send(report.ready ? 'ready\n' : 'not ready\n');
  });
  r.get('/metrics', noStore, async (req, res) => {
    if (o.token === undefined) {
      res
        .status(404)
        .type('text/plain')
        .send('Metrics are turned off: set metricsToken in the panel configuration.\n');
      return;
    }
    if (!bearerMatches(req.get('authorization'), o.token)) {
      res
        .status(401)
        .set('www-authenticate', 'Bearer')
        .type('text/plain')
        .send('A valid metrics token is needed.\n');
      return;
    }
    const merged = Registry.merge(await o.registries());
    res.type(merged.contentType).send(await merged.metrics());
  });
  return r;
}
