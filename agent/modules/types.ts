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
  /** What this module lets the backups module read and put back (agent/modules/backups). */
  backupSource?: BackupSource;
  /**
   * Steps that run before another module's handler of an event, in that call and under that
   * module's lock (the backups module's trash snapshot before `delete website` / `drop
   * database`). A step that throws fails the call before the handler changes anything.
   * agent/main.ts composes them into the handlers; nothing registers itself.
   */
  before?: BeforeSteps;
}

export type BeforeSteps = { [E in EventName]?: (req: RequestOf<E>, ctx: CallContext) => Promise<void> };

/** The files of one site, as the websites module knows them (absolute paths). */
export interface SiteFiles {
  /** The site's tree (docroot, logs, …): `<wwwRoot>/<domain>`. */
  tree: string;
  /** The vhost file (null when the site has none on disk). */
  vhost: string | null;
  /** Other files of the site (its PHP-FPM pool when it has one). */
  extra: string[];
}

/** A vhost taken out of Apache's files by a restore, to put back on rollback. */
export interface SavedVhost {
  text: string;
  link: { target: string | null; content: string | null } | null;
}

/** What a restored site's vhost is rendered from (its PonIO header's values, validated). */
export interface SiteSpec {
  aliases: string[];
  adminEmail: string | null;
  php: { version: string; settings: Record<string, unknown> } | null;
}

/** The websites module's side of backups and restores. */
export interface SiteBackupSource {
  /** The domains of the sites PonIO manages on this host. */
  sites(): Promise<string[]>;
  /** A managed site's files, or null when there is no such site. */
  files(domain: string): Promise<SiteFiles | null>;
  /** Where a site of that name keeps its tree (it need not exist): the path guard's answer. */
  treeOf(domain: string): Promise<string>;
  /** The web root the site trees live in (a restore stages its files there: same filesystem). */
  wwwRoot: string;
  /** What a backed-up vhost says of its site (validated), or null when PonIO did not write it. */
  describeVhost(text: string): SiteSpec | null;
  /** A site's vhost bytes and enabled state (to put back on rollback), or null. */
  savedVhost(domain: string): Promise<SavedVhost | null>;
  /** Takes a site's vhost out without a reload (a restore puts one back before reloading). */
  detach(domain: string): Promise<void>;
  /** Puts a detached vhost back and reloads (rollback). */
  reattach(domain: string, saved: SavedVhost): Promise<void>;
  /**
   * Makes a site whose tree is in place live: a fresh vhost (validated values only), enabled,
   * config-tested and reloaded; on failure nothing of it is left and it throws.
   */
  install(domain: string, spec: SiteSpec, ctx: ChangeContext): Promise<void>;
  /** Removes a site's vhost and link and reloads (rollback of a restore to a new name). */
  remove(domain: string): Promise<void>;
}

/** The ftp module's side: the accounts whose home is inside a site tree. */
export interface FtpBackupSource {
  /** The user-file lines (passwd format, hashes only) of the accounts living under `tree`. */
  usersUnder(tree: string): Promise<string[]>;
  /** Adds the accounts of `lines` that do not exist (a restore); returns their names. */
  restoreUsers(lines: readonly string[], fromTree: string, toTree: string): Promise<string[]>;
}

/** The mysql module's side: names, the admin connection, and the client programs' arguments. */
export interface DatabaseBackupSource {
  databases(): Promise<string[]>;
  /** A statement as the admin account (values as parameters, identifiers quoted by the caller). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /**
   * Arguments that make mariadb-dump / mariadb reach the server as the admin account (socket,
   * user, and a 0600 defaults file when a password is needed: never on the command line).
   */
  clientArgs(): Promise<{ args: string[]; done(): Promise<void> }>;
}

export interface BackupSource {
  sites?: SiteBackupSource;
  ftp?: FtpBackupSource;
  databases?: DatabaseBackupSource;
}

/** Any one module (a union, so each keeps its own handler types). */
export type AnyAgentModule = { [M in ModuleName]: AgentModule<M> }[ModuleName];

/**
 * An in-process notice between modules: a website's files changed owner (the websites module
 * gave them to the site's own user), so the FTP users of that site must act as the new owner.
 */
export interface SiteOwnerEvents {
  changed(domain: string): void;
  onChanged(listener: (domain: string) => void): void;
}

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
  /** The other modules' backup sources (agent/main.ts: the modules started before this one). */
  backupSources?: () => BackupSource;
  siteOwners?: SiteOwnerEvents;
  /**
   * Calls one of the agent's own events through its router, as a panel would (same lock,
   * journal, validation): the websites module's renewal timer renews certificates this way.
   */
  selfCall?: (
    event: EventName,
    params: Record<string, unknown>,
  ) => Promise<{ ok: boolean; error?: { message: string } }>;
}

export const unavailable = (reason: string): ModuleAvailability => ({ available: false, reason });
export const available = (): ModuleAvailability => ({ available: true });

/**
 * Stands for a module whose code was not loaded because it is not available here (agent/main.ts):
 * no handlers; the router answers its events with the reason.
 */
export const absentModule = (name: ModuleName, a: ModuleAvailability): AnyAgentModule =>
  ({ name, availability: () => a, handlers: {} }) as unknown as AnyAgentModule;
