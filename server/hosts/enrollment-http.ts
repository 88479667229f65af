import express, { Router, type ErrorRequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { PanelContext } from '../context.ts';
import { EnrollmentError } from './enrollment-input.ts';

const jsonError = (res: Response, status: number, code: string, message: string): void => {
  res.status(status).json({ error: { code, message } });
};

/**
 * The enrollment endpoint on the panel's HTTPS port (no session, no API token: the join token
 * is the credential). Mounted before the dashboard, so its CSRF and session middleware never
 * see these requests; it parses its own small JSON bodies.
 *
 * - `GET /enroll/ca`: the CA certificate (PEM). Public; the agent compares its fingerprint with
 *   the `--ca-pin` it was given before sending anything.
 * - `POST /enroll` `{ token, csr }` → `{ data: { hostId, certificate, ca, port, notAfter } }`.
 *
 * Both are rate-limited per client address (POST /enroll: 30 refused requests per 15 minutes).
 */
export function enrollmentRouter(ctx: PanelContext): Router {
  const r = Router();
  const enrollment = ctx.enrollment;
  if (!enrollment) return r;
  const limited = (limit: number, windowMs: number, onlyFailures = false) =>
    rateLimit({
      windowMs,
      limit,
      // Guessing is what is limited: a successful enrollment spends a real token anyway.
      skipSuccessfulRequests: onlyFailures,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      handler: (_req, res) => {
        jsonError(
          res,
          429,
          'rate-limited',
          'Too many enrollment requests from this address; wait a few minutes and try again.',
        );
      },
    });

  r.get('/enroll/ca', limited(120, 60_000), (_req, res) => {
    res.set('cache-control', 'no-store').type('application/x-pem-file').send(ctx.pki.ca.certPem);
  });

  r.post(
    '/enroll',
    limited(30, 15 * 60_000, true),
    express.json({ limit: '32kb', type: () => true }),
    async (req, res) => {
      const remote = (req.ip ?? req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      try {
        const data = await enrollment.enroll(req.body, remote);
        res.status(201).json({ data });
      } catch (e) {
        if (e instanceof EnrollmentError) {
          jsonError(res, e.status, e.code, e.message);
          return;
        }
        ctx.logger.error({ err: e }, 'enrollment failed');
        jsonError(res, 500, 'internal', 'Enrollment failed because of an internal error; see the panel log.');
      }
    },
  );

  const onError: ErrorRequestHandler = (err: unknown, _req, res, next) => {
    const e = err as { type?: string; status?: number };
    if (e.type === 'entity.parse.failed' || e.type === 'entity.too.large') {
      jsonError(
        res,
        e.status ?? 400,
        'invalid-argument',
        'The enrollment request is not valid JSON or is too large.',
      );
      return;
    }
    next(err);
  };
  r.use('/enroll', onError);
  return r;
}
