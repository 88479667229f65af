import type { Logger } from 'pino';
import type { ServiceStatus } from '../../shared/protocol/hello.ts';

/**
 * Restarts a private service of the sandbox (Apache, proftpd, MariaDB) that died on its own, with
 * bounded retries and exponential backoff: at most `maxRestarts` attempts within `windowMs`; past
 * that the service is `failed` and left alone (reported in hello and on the dashboard) until the
 * agent restarts. A stop the agent asked for is not a crash (`stop()` first). System mode does not
 * use it: Debian's services belong to systemd; the agent only reports their state.
 */
export interface SupervisorOptions {
  /** The service's name in reports (`apache2`, `proftpd`, `mariadb`). */
  service: string;
  logger: Logger;
  /** Brings the service back; throws when it could not. */
  restart: () => Promise<void>;
  maxRestarts?: number;
  windowMs?: number;
  /** Delay before the first restart, doubled per attempt in the window, at most `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

export class Supervisor {
  private state: ServiceStatus['state'] = 'running';
  private restarts = 0;
  private detail: string | undefined;
  private attempts: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly maxRestarts: number;
  private readonly windowMs: number;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly opts: SupervisorOptions) {
    this.maxRestarts = opts.maxRestarts ?? 3;
    this.windowMs = opts.windowMs ?? 10 * 60_000;
    this.firstDelayMs = opts.firstDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 8_000;
  }

  status(): ServiceStatus {
    return {
      service: this.opts.service,
      state: this.state,
      restarts: this.restarts,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
    };
  }

  /** Whether the service is meant to be up but is not (restarting or given up). */
  get down(): boolean {
    return this.state !== 'running';
  }

  /** The service died on its own (`why`: its exit code/signal or output). */
  crashed(why: string): void {
    if (this.stopped || this.timer !== null || this.state === 'failed') return;
    const now = Date.now();
    this.attempts = this.attempts.filter((t) => now - t < this.windowMs);
    if (this.attempts.length >= this.maxRestarts) {
      this.state = 'failed';
      this.detail = `${this.opts.service} died ${this.attempts.length + 1} times within ${Math.round(this.windowMs / 60_000)} min and is no longer restarted (last: ${why}); fix the cause, then restart the agent.`;
      this.opts.logger.error({ service: this.opts.service, why }, 'sandbox service given up');
      return;
    }
    const delay = Math.min(this.firstDelayMs * 2 ** this.attempts.length, this.maxDelayMs);
    this.attempts.push(now);
    this.state = 'restarting';
    this.detail = `${this.opts.service} died (${why}); restarting it (attempt ${this.attempts.length} of ${this.maxRestarts}).`;
    this.opts.logger.warn(
      { service: this.opts.service, why, delayMs: delay },
      'sandbox service died; restarting',
    );
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      this.opts.restart().then(
        () => {
          if (this.stopped) return;
          this.restarts++;
          this.state = 'running';
          this.detail = `restarted ${this.restarts} time(s); last crash: ${why}`;
          this.opts.logger.info(
            { service: this.opts.service, restarts: this.restarts },
            'sandbox service restarted',
          );
        },
        (e: unknown) => {
          this.state = 'running'; // let crashed() account for this attempt and decide
          this.crashed(`restart failed: ${(e as Error).message}`);
        },
      );
    }, delay);
    this.timer.unref();
  }

  /** The service runs again without the supervisor's help (e.g. a change started it): clear the alarm. */
  recovered(): void {
    if (this.stopped || this.state === 'running') return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.attempts = [];
    this.state = 'running';
    this.detail = `running again after: ${this.detail ?? 'a crash'}`;
  }

  /** The agent stops the service: no more restarts. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.state = 'stopped';
  }
}
