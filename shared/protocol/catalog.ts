import type { EventDef } from './define.ts';
import type { ModuleName } from './hello.ts';
import type { EventName, RpcEvents } from './index.ts';

/**
 * Which module answers each event of the contract, as plain data (no schema built). The agent
 * knows every event name from it, so it can answer the events of a module it never loaded with
 * that module's reason, while building the schemas of loaded modules only (each domain's
 * schemas cost memory at start). The type checker holds it to the schemas in events/*.ts: every
 * event, no other name, the same module.
 */
export const EVENT_MODULES = {
  ping: 'system',
  'system info': 'system',
  'agent metrics': 'system',
  'call outcome': 'system',
  'renew certificate': 'system',
  'install certificate': 'system',
  'set revocations': 'system',
  'list websites': 'websites',
  'create website': 'websites',
  'set website php': 'websites',
  'set website https': 'websites',
  'renew website certificate': 'websites',
  'enable website': 'websites',
  'disable website': 'websites',
  'delete website': 'websites',
  'list ftp users': 'ftp',
  'create ftp user': 'ftp',
  'set ftp password': 'ftp',
  'disable ftp user': 'ftp',
  'enable ftp user': 'ftp',
  'delete ftp user': 'ftp',
  'list databases': 'mysql',
  'create database': 'mysql',
  'drop database': 'mysql',
  'list database users': 'mysql',
  'create database user': 'mysql',
  'set database password': 'mysql',
  'grant database': 'mysql',
  'revoke database': 'mysql',
  'drop database user': 'mysql',
  'list firewall rules': 'firewall',
  'add firewall rule': 'firewall',
  'delete firewall rule': 'firewall',
  'block ip': 'firewall',
  'unblock ip': 'firewall',
  'apply firewall baseline': 'firewall',
  'remove firewall baseline': 'firewall',
  'reapply firewall': 'firewall',
  'confirm firewall': 'firewall',
  'list backups': 'backups',
  'back up': 'backups',
  'restore backup': 'backups',
  'set backup settings': 'backups',
  'prune backups': 'backups',
  'check backups': 'backups',
} as const satisfies { [E in EventName]: RpcEvents[E]['module'] };

/** The module of an event of the contract, or undefined for any other name. */
export const eventModule = (name: unknown): ModuleName | undefined =>
  typeof name === 'string' && Object.prototype.hasOwnProperty.call(EVENT_MODULES, name)
    ? EVENT_MODULES[name as EventName]
    : undefined;

const loaded = new Map<string, EventDef>();

/** Called by each events/<domain>.ts once its schemas are built. */
export function registerEvents(defs: Readonly<Record<string, EventDef>>): void {
  for (const [name, def] of Object.entries(defs)) loaded.set(name, def);
}

/** An event's definition if its domain's schemas were loaded (imported) in this process. */
export const loadedEventDef = (name: EventName): EventDef | undefined => loaded.get(name);
