import express, { type ErrorRequestHandler, type Express } from 'express';
import helmet from 'helmet';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PanelContext } from '../context.ts';
import { apiRouter } from '../api/index.ts';
import { dashboardRouter } from './dashboard.ts';
import { enrollmentRouter } from '../hosts/enrollment-http.ts';
import { PanelHttpError } from './errors.ts';
import { renderPage } from './render.ts';
import { scriptAssets } from './assets.ts';
import { agentDownloadsRouter } from './agent-downloads.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The panel's Express app: security headers, static assets from node_modules, API, dashboard. */
export function createApp(ctx: PanelContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', ctx.config.trustProxy); // false or named proxies only (server/config.ts)
  app.set('view engine', 'pug');
  app.set('views', path.join(ROOT, 'views'));
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: true,
        directives: {
          'default-src': ["'self'"],
          'script-src': ["'self'"],
          'style-src': ["'self'"],
          'img-src': ["'self'", 'data:'],
          'font-src': ["'self'"],
          'connect-src': ["'self'"],
          'form-action': ["'self'"],
          'frame-ancestors': ["'none'"],
          'object-src': ["'none'"],
          'base-uri': ["'none'"],
        },
      },
      strictTransportSecurity: { maxAge: 15552000, includeSubDomains: false },
    }),
  );
  // A path that is not valid percent-encoding is the client's mistake: 400, logged at debug.
  app.use((req, _res, next) => {
    try {
      decodeURIComponent(req.path);
    } catch {
      ctx.logger.debug({ url: req.originalUrl.slice(0, 300) }, 'malformed percent-encoding');
      next(new PanelHttpError(400, 'invalid-argument', 'The address has malformed percent-encoding.'));
      return;
    }
    next();
  });
  app.use(ctx.observability.rateLimitCounter);
  app.use(ctx.observability.router()); // /healthz, /readyz (public), /metrics (bearer token)
  const staticOpts = { maxAge: '1d', index: false, fallthrough: true } as const;
  app.use('/static/bootstrap', express.static(path.join(ROOT, 'node_modules/bootstrap/dist'), staticOpts));
  app.use('/static/icons', express.static(path.join(ROOT, 'node_modules/bootstrap-icons/font'), staticOpts));
  // The browser part of SimpleWebAuthn (passkeys, server/auth/two-factor.ts), served locally.
  app.use(
    '/static/webauthn',
    express.static(path.join(ROOT, 'node_modules/@simplewebauthn/browser/dist/bundle'), staticOpts),
  );
  app.use('/static', express.static(path.join(ROOT, 'public'), staticOpts));
  app.use('/static', scriptAssets(path.join(ROOT, 'public')));
  app.use(enrollmentRouter(ctx)); // /enroll, /enroll/ca: before the dashboard (own JSON parser, no CSRF)
  app.use(agentDownloadsRouter(ctx)); // /agent/install.sh, /agent/ponio-agent.cjs: public, no session
  app.use('/api/v1', apiRouter(ctx));
  app.use(dashboardRouter(ctx));
  app.use((_req, _res, next) => next(new PanelHttpError(404, 'not-found', 'Page not found.')));
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const e = err instanceof PanelHttpError ? err : null;
    const parse = err as { type?: string; status?: number };
    const clientError = typeof parse.status === 'number' && parse.status >= 400 && parse.status < 500;
    const status =
      e?.status ??
      (parse.type === 'entity.too.large'
        ? 413
        : parse.type
          ? 400
          : clientError
            ? (parse.status ?? 400)
            : 500);
    if (!e && status === 500) ctx.logger.error({ err }, 'request failed');
    const message =
      e?.message ??
      (status === 500 ? 'Internal error; see the panel log.' : 'The request could not be read.');
    res.status(status);
    if (req.accepts(['html', 'text']) === 'html') {
      renderPage(req, res, 'error', { title: `Error ${status}`, status, message });
      return;
    }
    res.type('text/plain').send(message);
  };
  app.use(onError);
  return app;
}
