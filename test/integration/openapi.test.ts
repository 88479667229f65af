import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { OPENAPI_ROUTES } from '../../server/api/openapi-routes.ts';
import { rpcEvents, EVENT_NAMES } from '../../shared/protocol/index.ts';

// The OpenAPI document is generated from the RPC zod schemas and describes routes that exist.
let t: TestPanel;
before(async () => {
  t = await startTestPanel();
});
after(async () => {
  await t.close();
});

test('openapi.json is OpenAPI 3.1 with bearer auth and JSON schemas from the protocol', async () => {
  const r = await t.request<any>('GET', '/api/v1/openapi.json', { token: null });
  assert.equal(r.status, 200);
  assert.equal(r.body.openapi, '3.1.0');
  assert.equal(r.body.components.securitySchemes.bearer.scheme, 'bearer');
  const create = r.body.paths['/hosts/{hostId}/websites'].post;
  const body = create.requestBody.content['application/json'].schema;
  // From shared/protocol: strict object (unknown keys refused), domain required, optional requestId uuid.
  assert.equal(body.additionalProperties, false);
  assert.deepEqual(body.required, ['domain']);
  assert.equal(body.properties.requestId.format, 'uuid');
  assert.ok(create.responses['201']);
  assert.ok(create.responses['502'] && create.responses['504']);
  const del = r.body.paths['/hosts/{hostId}/websites/{domain}'].delete;
  assert.ok(!del.requestBody, 'path parameters are not repeated in a body');
  assert.ok(del.parameters.some((p: { name: string; in: string }) => p.name === 'domain' && p.in === 'path'));
  const tok = r.body.paths['/tokens'].post.responses['201'].content['application/json'].schema;
  assert.ok(tok.properties.data.properties.token, 'token creation documents the one-time secret');
});

test('every documented route is served (no 404 "No such API endpoint")', async () => {
  const fill = (p: string): string =>
    p
      .replace('{hostId}', 'nohost')
      .replace('{id}', '999999')
      .replace(/\{[^}]+\}/g, 'x');
  for (const route of OPENAPI_ROUTES) {
    const r = await t.request(route.method.toUpperCase(), `/api/v1${fill(route.path)}`, {
      body: route.method === 'get' || route.method === 'delete' ? undefined : {},
    });
    assert.notEqual(
      r.body?.error?.message,
      'No such API endpoint.',
      `${route.method.toUpperCase()} ${route.path} is documented but not served`,
    );
  }
});

test('every documented event exists, and every panel-reachable mutation is documented', () => {
  const documented = new Set(OPENAPI_ROUTES.flatMap((r) => (r.event ? [r.event] : [])));
  for (const e of documented) assert.ok(EVENT_NAMES.includes(e), `${e} is an RPC event`);
  // Domains whose REST routes exist must document each of their mutations.
  const modules = new Set(OPENAPI_ROUTES.flatMap((r) => (r.event ? [rpcEvents[r.event].module] : [])));
  for (const name of EVENT_NAMES) {
    const def = rpcEvents[name];
    if (def.module === 'system' || !modules.has(def.module)) continue;
    assert.ok(documented.has(name), `"${name}" (${def.module}) has no documented REST route`);
  }
});

/** method + path of every route an Express router serves (mounted routers included). */
function servedRoutes(router: unknown, prefix = ''): string[] {
  type Layer = {
    rawPath?: unknown;
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  };
  const out: string[] = [];
  for (const layer of (router as { stack: Layer[] }).stack) {
    if (layer.route) {
      for (const m of Object.keys(layer.route.methods))
        if (m !== '_all') out.push(`${m} ${prefix}${layer.route.path}`);
    } else if (layer.handle?.stack) {
      const p = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...servedRoutes(layer.handle, prefix + p));
    }
  }
  return out;
}

test('every served API route is documented in openapi.json (with the role it enforces)', async () => {
  const { apiRouter } = await import('../../server/api/index.ts');
  const norm = (s: string): string => s.replace(/\{[^}]+\}|:[A-Za-z]+/g, '{}');
  const documented = new Set(OPENAPI_ROUTES.map((r) => `${r.method} ${norm(r.path)}`));
  const served = servedRoutes(apiRouter(t.panel.ctx)).map(norm);
  assert.ok(served.length > 40, `found the routes (${served.length})`);
  const undocumented = served.filter((s) => !documented.has(s) && s !== 'get /openapi.json');
  assert.deepEqual(undocumented, [], 'served but not in the OpenAPI document');
});

test('a documented role is the role the route enforces (one role below is refused)', async () => {
  const fill = (p: string): string =>
    p
      .replace('{hostId}', 'nohost')
      .replace('{id}', '999999')
      .replace(/\{[^}]+\}/g, 'x');
  const below = { admin: 'operator', operator: 'viewer' } as const;
  for (const route of OPENAPI_ROUTES) {
    if (route.role === undefined || route.role === 'viewer') continue;
    const body = route.method === 'get' || route.method === 'delete' ? undefined : {};
    const url = `/api/v1${fill(route.path)}`;
    const refused = await t.request(route.method.toUpperCase(), url, {
      body,
      token: t.token(below[route.role]),
    });
    assert.equal(
      refused.status,
      403,
      `${route.method.toUpperCase()} ${route.path} with ${below[route.role]}`,
    );
    const allowed = await t.request(route.method.toUpperCase(), url, { body, token: t.token(route.role) });
    assert.notEqual(allowed.status, 403, `${route.method.toUpperCase()} ${route.path} with ${route.role}`);
  }
});
