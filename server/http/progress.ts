import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestHandler } from 'express';

/**
 * Live progress of a dashboard form: the page's script adds a `progressId` (a UUID) to the form it
 * submits; the agent call made for that request uses it as its requestId, so the agent's
 * `progress` events for that call ("Testing the Apache configuration", "Reloading Apache") reach
 * the browser that waits for the reply, which shows them next to its spinner. Without JavaScript
 * nothing changes. The id lives in an AsyncLocalStorage for the request, so no route has to pass
 * it along.
 */
const scope = new AsyncLocalStorage<{ progressId: string; taken: boolean }>();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function progressScope(): RequestHandler {
  return (req, _res, next) => {
    const id = (req.body as Record<string, unknown> | undefined)?.progressId;
    if (req.method === 'POST' && typeof id === 'string' && UUID.test(id))
      scope.run({ progressId: id, taken: false }, next);
    else next();
  };
}

/**
 * The progressId of the dashboard request being served, if its form carried one, for its first
 * agent mutation only (a requestId names one call: a second mutation of the same request must not
 * be answered from the first one's cached reply).
 */
export function takeProgressId(): string | undefined {
  const store = scope.getStore();
  if (!store || store.taken) return undefined;
  store.taken = true;
  return store.progressId;
}
