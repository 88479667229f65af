import { z } from 'zod';
import { rpcEvents, PONIO_VERSION } from '../../shared/protocol/index.ts';
import { OPENAPI_ROUTES, type ApiRouteDoc } from './openapi-routes.ts';

type Json = Record<string, unknown>;

const jsonSchema = (s: z.ZodType, io: 'input' | 'output'): Json =>
  z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' });

const strip = (s: Json): Json => {
  const { $schema: _drop, ...rest } = s;
  return rest;
};

const errorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

function requestBody(route: ApiRouteDoc, pathParams: string[]): Json | null {
  let schema: z.ZodType | undefined = route.body;
  if (!schema && route.event) {
    const req = rpcEvents[route.event].request as z.ZodType;
    const omit: Record<string, true> = {};
    const keys = req instanceof z.ZodObject ? Object.keys(req.shape) : [];
    for (const p of [...pathParams, ...(route.query ?? []).map((q) => q.name)])
      if (keys.includes(p)) omit[p] = true;
    schema = req instanceof z.ZodObject ? req.omit(omit as never) : req;
    if (schema instanceof z.ZodObject && Object.keys(schema.shape).length === 0) return null;
  }
  if (!schema || route.method === 'get' || route.method === 'delete') return null;
  return { required: true, content: { 'application/json': { schema: strip(jsonSchema(schema, 'input')) } } };
}

/** The OpenAPI 3.1 document of REST API v1, built from the RPC contract's zod schemas. */
/** How host scopes apply to a route (docs/security.md §11), for its description. */
const scopeNote = (route: ApiRouteDoc): string =>
  route.access === 'panel'
    ? ' (panel-wide)'
    : route.access === 'scoped-list'
      ? " (the result is cut to the caller's hosts)"
      : ' on this host (a host outside the caller’s scope answers 404)';

export function openApiDocument(serverUrl: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of OPENAPI_ROUTES) {
    const pathParams = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '');
    const data = route.data ?? (route.event ? rpcEvents[route.event].reply : z.unknown());
    const body = requestBody(route, pathParams);
    const status = String(route.status ?? 200);
    const op: Json = {
      summary: route.summary,
      tags: [route.tag],
      operationId: `${route.method}${route.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      description: `Needs the **${route.role}** role${scopeNote(route)}.${route.event ? ` Calls the agent event \`${route.event}\`: ${rpcEvents[route.event].summary}` : ''}`,
      'x-ponio-access': route.access ?? 'host',
      parameters: [
        ...pathParams.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
        ...(route.query ?? []).map((q) => ({
          name: q.name,
          in: 'query',
          required: false,
          description: q.description,
          schema: strip(jsonSchema(q.schema, 'input')),
        })),
      ],
      ...(body ? { requestBody: body } : {}),
      responses: {
        [status]: {
          description: 'Success',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['data', ...Object.keys(route.extra ?? {})],
                properties: {
                  data: strip(jsonSchema(data, 'output')),
                  ...Object.fromEntries(
                    Object.entries(route.extra ?? {}).map(([k, v]) => [k, strip(jsonSchema(v, 'output'))]),
                  ),
                },
              },
            },
          },
        },
        '400': errorResponse('invalid-argument: the input was refused (nothing changed)'),
        '401': errorResponse('unauthenticated: no, unknown, revoked or expired token'),
        '403': errorResponse('permission-denied: the token role is too low'),
        '404': errorResponse('not-found'),
        ...(route.event
          ? {
              '409': errorResponse(
                'already-exists or failed-precondition (e.g. a config test failed; rolled back)',
              ),
              '501': errorResponse('unsupported: the module is not available on this host'),
              '502': errorResponse('unavailable: the agent is offline'),
              '504': errorResponse('timeout: the agent did not answer in time'),
            }
          : {}),
      },
    };
    const p = `${route.path}`;
    paths[p] = { ...(paths[p] ?? {}), [route.method]: op };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'PonIO REST API',
      version: PONIO_VERSION,
      description:
        'Everything the PonIO dashboard does. JSON in and out; errors are `{ "error": { "code", "message" } }`. Authenticate with `Authorization: Bearer <token>` (create tokens on the API tokens page or with `ponio-panel token create`).',
    },
    servers: [{ url: `${serverUrl}/api/v1` }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A PonIO API token (pio_…)' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string' }, message: { type: 'string' } },
            },
          },
        },
      },
    },
    paths,
  };
}
