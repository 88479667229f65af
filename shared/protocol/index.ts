import type { z } from 'zod';
import { systemEvents } from './events/system.ts';
import { websitesEvents } from './events/websites.ts';
import { ftpEvents } from './events/ftp.ts';
import { mysqlEvents } from './events/mysql.ts';
import { firewallEvents } from './events/firewall.ts';
import { backupsEvents } from './events/backups.ts';
import type { EventDef } from './define.ts';

export * from './errors.ts';
export * from './reply.ts';
export * from './version.ts';
export * from './hello.ts';
export * from './define.ts';

/** Every RPC event of the contract (design §4), by its plain-words name. */
export const rpcEvents = {
  ...systemEvents,
  ...websitesEvents,
  ...ftpEvents,
  ...mysqlEvents,
  ...firewallEvents,
  ...backupsEvents,
} as const;

export type RpcEvents = typeof rpcEvents;
export type EventName = keyof RpcEvents;
/** What a caller passes (before validation/normalisation). */
export type RequestIn<E extends EventName> = z.input<RpcEvents[E]['request']>;
/** What a handler receives (after validation/normalisation). */
export type RequestOf<E extends EventName> = z.output<RpcEvents[E]['request']>;
export type ReplyData<E extends EventName> = z.output<RpcEvents[E]['reply']>;

export const EVENT_NAMES = Object.keys(rpcEvents) as EventName[];
export const isEventName = (name: unknown): name is EventName =>
  typeof name === 'string' && Object.prototype.hasOwnProperty.call(rpcEvents, name);
export const eventDef = (name: EventName): EventDef => rpcEvents[name];
