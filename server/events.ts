import { EventEmitter } from 'node:events';
import type { AgentEvent } from '../shared/protocol/index.ts';
import type { HostStatus } from './hosts/connection-manager.ts';

export interface HostChange {
  hostId: string;
  /** The RPC event or panel action, e.g. 'create website'. */
  action: string;
  /** Module that changed (websites, ftp, …) or 'hosts'. */
  module: string;
  actor: string;
  ok: boolean;
  message: string;
}

/** A job (server/jobs/) changed: its state, or one host's outcome when hostId is set. */
export interface JobChange {
  jobId: number;
  hostId?: string;
}

interface PanelEventMap {
  /** A mutation went through the panel (relayed to browsers in room host:<id>). */
  hostChange: [HostChange];
  /** A host's connection state changed. */
  hostState: [HostStatus];
  /** A notification from an agent (progress, auto-revert…). */
  agentEvent: [string, AgentEvent];
  /** Hosts were added or removed. */
  hostsChanged: [];
  /** A job or one of its hosts changed (relayed to browsers watching the job). */
  job: [JobChange];
}

/** In-process bus between the panel's parts (realtime relays it to browsers). */
export class PanelEvents extends EventEmitter<PanelEventMap> {}
