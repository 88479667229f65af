import { z } from 'zod';
import { rpcEvents, type EventName } from '../../shared/protocol/index.ts';
import { ENVELOPE_KEYS } from '../../shared/protocol/define.ts';

/** One field of an event's request, as a form or the CLI offers it. */
export interface ParamField {
  name: string;
  kind: 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'list' | 'json';
  required: boolean;
  options: string[];
  secret: boolean;
}

interface JsonProp {
  type?: string;
  enum?: unknown[];
  anyOf?: JsonProp[];
  items?: JsonProp;
}

const fieldsCache = new Map<EventName, ParamField[]>();

/** The request fields of an event (the envelope — requestId, deadlineMs — left out: a job sets it), from its zod schema. */
export function paramFields(event: EventName): ParamField[] {
  let out = fieldsCache.get(event);
  if (out) return out;
  const def = rpcEvents[event];
  const js = z.toJSONSchema(def.request, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonProp>;
    required?: string[];
  };
  const kindOf = (p: JsonProp): ParamField['kind'] => {
    if (p.enum) return 'enum';
    if (p.anyOf) return p.anyOf.some((x) => x.type === 'string') ? 'string' : 'json';
    switch (p.type) {
      case 'string':
        return 'string';
      case 'integer':
        return 'integer';
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array':
        return p.items?.type === 'string' ? 'list' : 'json';
      default:
        return 'json';
    }
  };
  out = Object.entries(js.properties ?? {})
    .filter(([name]) => !ENVELOPE_KEYS.includes(name))
    .map(([name, p]) => ({
      name,
      kind: kindOf(p),
      required: (js.required ?? []).includes(name),
      options: (p.enum ?? []).map(String),
      secret: (def.secrets ?? []).includes(name),
    }));
  fieldsCache.set(event, out);
  return out;
}

/**
 * Turns text values (a form's fields, the CLI's `--param key=value`) into the event's params:
 * numbers for integer fields, true/false for booleans, comma-separated lists, JSON for the rest.
 * Empty optional fields are left out. The result is checked against the schema later, once.
 */
export function paramsFromText(
  event: EventName,
  values: Readonly<Record<string, string>>,
): { ok: true; params: Record<string, unknown> } | { ok: false; message: string } {
  const fields = new Map(paramFields(event).map((f) => [f.name, f]));
  const params: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(values)) {
    const f = fields.get(name);
    if (!f)
      return { ok: false, message: `"${event}" has no parameter ${JSON.stringify(name.slice(0, 60))}.` };
    const v = raw.trim();
    if (v === '' && f.kind !== 'string') continue;
    if (v === '' && !f.required) continue;
    switch (f.kind) {
      case 'integer':
      case 'number':
        if (!/^-?\d+(\.\d+)?$/.test(v)) return { ok: false, message: `${name} must be a number.` };
        params[name] = Number(v);
        break;
      case 'boolean':
        if (!['true', 'false', 'on', '1', '0'].includes(v))
          return { ok: false, message: `${name} is true or false.` };
        params[name] = v === 'true' || v === 'on' || v === '1';
        break;
      case 'list':
        params[name] = v
          .split(/[,\n]/)
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case 'json':
        try {
          params[name] = JSON.parse(v) as unknown;
        } catch {
          return { ok: false, message: `${name} must be JSON.` };
        }
        break;
      default:
        params[name] = raw;
    }
  }
  return { ok: true, params };
}
