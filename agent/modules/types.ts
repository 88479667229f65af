import type { Logger } from 'pino';
import type { EventName, ModuleName, ReplyData, RequestOf, RpcEvents } from '../../shared/protocol/index.ts';
import type { ServiceStatus } from '../../shared/protocol/hello.ts';
import type { Exec } from '../os/exec.ts';
import type { HostLayout } from '../os/layout.ts';

/** What a handler knows about the call it serves. */
export interface CallContext {
  /**
   * The connected panel's address as seen by the agent (the firewall's lock-out guard uses it).
   * `direction` says who dialed: inbound (default) — the panel connected to the agent's
   * `localPort`; outbound — the agent dialed the panel's listener at `address`:`port`.
   */
  peer: { address: string; port: number; localPort: number; direction?: 'inbound' | 'outbound' };
  requestId: string | undefined;
  signal: AbortSignal;
  logger: Logger;
  /** Progress and state-change notifications to the panel (`event` {topic, data}). */
  emit(topic: string, data: unknown): void;
  /**
   * One step of a mutation ("Testing the Apache configuration"), shown live to the admin who
   * asked: `event` {topic: 'progress', data: {requestId, event, step, message}} to the calling
   * panel. A no-op for a call without a requestId.
   */
  progress(message: string): void;
  /**
   * Records (fsynced, in the agent's journal) what this mutation is about to change, before its
   * first change of the host. If the agent dies before the call ends, its module's `recover`
   * gets this back at the next start and completes or undoes the change. Also the call's safe
   * point: it throws `timeout` when the caller's deadline has passed, so nothing starts late.
   * May be called again with more (the last one counts). A no-op for reads.
   */
  intent(data: unknown): Promise<void>;
}

/** Reports the steps of one change (CallContext.progress, or nothing). */
export type Progress = (message: string) => void;
export const noProgress: Progress = () => undefined;

/** What a service needs from its call to change the host: live steps and the journal's intent. */
export type ChangeContext = Pick<CallContext, 'progress' | 'intent'>;
/** Outside a call (unit tests of a service): no progress, no journal. */
export const noChange: ChangeContext = { progress: noProgress, intent: () => Promise.resolve() };

export type Handler<E extends EventName> = (req: RequestOf<E>, ctx: CallContext) => Promise<ReplyData<E>>;

export type EventsOf<M extends ModuleName> = {
  [E in EventName]: RpcEvents[E]['module'] extends M ? E : never;
}[EventName];

export type HandlersOf<M extends ModuleName> = { [E in EventsOf<M>]: Handler<E> };

export interface ModuleAvailability {
  available: boolean;
  reason?: string;
}

/** What recovering an unfinished mutation found or did (AgentModule.recover). */
export type Recovered =
  /** The change is (now) fully in place; `data` is the reply the call would have given. */
  | { outcome: 'applied'; data: unknown }
  /** Nothing of the change is left: a retry runs it afresh. */
  | { outcome: 'absent' };

/** One domain of the agent (design §2: agent/modules/<domain>/). */
export interface AgentModule<M extends ModuleName = ModuleName> {
  name: M;
  /** Whether the service exists on this host. Cheap: a missing service must cost nothing. */
  availability(): ModuleAvailability;
  handlers: HandlersOf<M>;
  /** Called once at agent start (sandbox: start the private service instance; firewall: restore rules). */
  start?(): Promise<void>;
  /** Called on shutdown (sandbox: stop the private service instance). */
  stop?(): Promise<void>;
  /** The state of the service behind the module (sent in every hello); cheap. */
  service?(): ServiceStatus | undefined;
  /**
   * Completes or undoes a mutation the agent was killed in (agent/journal): gets the event and
   * the data the handler gave `CallContext.intent`, after `start()`. A module with mutations
   * must have it; the router answers an unknown outcome for a module without.
   */
  recover?(event: EventsOf<M>, intent: unknown): Promise<Recovered>;
  /** Directories the module writes files in atomically: stale temp files are swept at start. */
  writesIn?(): string[];
}

/** Any one module (a union, so each keeps its own handler types). */
export type AnyAgentModule = { [M in ModuleName]: AgentModule<M> }[ModuleName];

/** What every module factory receives from agent/main.ts. */
export interface ModuleContext {
  layout: HostLayout;
  exec: Exec;
  logger: Logger;
  /** Broadcast to connected panels (state changes not tied to one call, e.g. firewall auto-revert). */
  broadcast(topic: string, data: unknown): void;
  /** The agent's own listening port (the firewall never cuts it). */
  agentPort: number;
  /** This agent's `modules` settings from its config (each module reads and validates its own key). */
  moduleSettings?: Readonly<Record<string, unknown>>;
}

export const unavailable = (reason: string): ModuleAvailability => ({ available: false, reason });
export const available = (): ModuleAvailability => ({ available: true });

/**
 * Stands for a module whose code was not loaded because it is not available here (agent/main.ts):
 * no handlers; the router answers its events with the reason.
 */
export const absentModule = (name: ModuleName, a: ModuleAvailability): AnyAgentModule =>
  ({ name, availability: () => a, handlers: {} }) as unknown as AnyAgentModule;
