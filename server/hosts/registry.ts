import type { HostsRepo, HostRow } from '../db/hosts.ts';
import type { ConnectionManager, HostStatus } from './connection-manager.ts';
import type { PanelEvents } from '../events.ts';

export interface HostView extends HostRow {
  connection: HostStatus | null;
}

/** Hosts known to the panel (the DB) joined with their live connection state. */
export class HostRegistry {
  constructor(
    readonly repo: HostsRepo,
    readonly manager: ConnectionManager,
    private readonly events: PanelEvents,
  ) {
    manager.on('state', (s) => events.emit('hostState', s));
    manager.on('agentEvent', (id, e) => events.emit('agentEvent', id, e));
  }

  /** Opens a connection to every enrolled host. */
  connectAll(): void {
    for (const h of this.repo.list()) if (h.status === 'enrolled') this.connect(h);
  }

  connect(h: HostRow): void {
    this.manager.add(
      h.mode === 'reverse' ? { id: h.id, mode: 'reverse' } : { id: h.id, address: h.address, port: h.port },
    );
  }

  disconnect(id: string): void {
    this.manager.remove(id);
  }

  list(): HostView[] {
    return this.repo.list().map((h) => ({ ...h, connection: this.manager.status(h.id) }));
  }

  get(id: string): HostView | null {
    const h = this.repo.get(id);
    return h ? { ...h, connection: this.manager.status(h.id) } : null;
  }
}
