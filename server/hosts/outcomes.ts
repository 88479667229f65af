import type { Logger } from 'pino';
import { eventModule } from '../../shared/protocol/catalog.ts';
import type { AuditLog } from '../db/audit.ts';
import type { PanelEvents } from '../events.ts';
import type { ConnectionManager } from './connection-manager.ts';

/** Unknown outcomes older than this are left as they are (the agent keeps its records 24 h). */
const MAX_AGE_MS = 24 * 3600_000;

/**
 * Resolves host calls whose outcome the panel could not tell (a mutation that timed out, see
 * docs/architecture.md, "Deadlines and unknown outcomes"): their audit entries say `unknown`
 * until the host is reachable and its journal (`call outcome`) says what became of them; then
 * the entry gets the real result and dashboards watching the host are told. Pending entries
 * live in the audit log itself, so a restarted panel resolves them too.
 */
export class OutcomeResolver {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly manager: Pick<ConnectionManager, 'call' | 'status'>,
    private readonly audit: AuditLog,
    private readonly events: PanelEvents,
    private readonly logger: Logger,
    private readonly intervalMs = 5_000,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Asks the hosts about every unresolved entry once (also what the timer does). */
  async sweep(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const e of this.audit.unresolved()) {
        if (Date.now() - e.at > MAX_AGE_MS) continue;
        if (this.manager.status(e.hostId)?.state !== 'online') continue;
        const r = await this.manager.call(e.hostId, 'call outcome', { id: e.requestId });
        if (!r.ok) continue;
        const o = r.data;
        if (o.state === 'running' || o.state === 'unknown') continue;
        const settled =
          o.state === 'absent'
            ? {
                ok: false,
                errorCode: 'timeout',
                message: `"${e.action}" did not change anything (the host undid or never started it).`,
              }
            : o.reply.ok
              ? { ok: true, errorCode: null, message: null }
              : { ok: false, errorCode: o.reply.error.code, message: o.reply.error.message };
        this.audit.resolve(e.id, settled);
        this.logger.info(
          { hostId: e.hostId, requestId: e.requestId, ok: settled.ok },
          'unknown outcome resolved',
        );
        const module = eventModule(e.action) ?? 'hosts';
        this.events.emit('hostChange', {
          hostId: e.hostId,
          action: e.action,
          module,
          actor: e.actor,
          ok: settled.ok,
          message: settled.ok
            ? `${e.actor}: ${e.action} (it had timed out; it was applied)`
            : `${e.action} (it had timed out): ${settled.message ?? 'failed'}`,
        });
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'resolving unknown outcomes failed');
    } finally {
      this.busy = false;
    }
  }
}
