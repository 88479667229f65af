import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { canonical } from '../../journal/journal.ts';
import { killPoint } from '../../journal/kill-point.ts';
import { RpcError } from '../../../shared/protocol/errors.ts';
import type { ReplyData } from '../../../shared/protocol/index.ts';
import type { FirewallPending } from '../../../shared/protocol/events/firewall.ts';
import { validateIp } from '../../../shared/validate/network.ts';
import { KeyedMutex } from '../../rpc/lock.ts';
import { ephemeralSamples, isBlocked, lostAccess, outboundVerdict, verdictFor } from './guard.ts';
import type { IptablesAdapter, Snapshot } from './iptables.ts';
import { activeBlocks, countRendered, FAMILIES, renderRestore, type Family } from './render.ts';
import type { ResolvedFirewallSettings } from './settings.ts';
import { cloneState, emptyState, type FirewallState, type FirewallStore } from './state.ts';

/** The kernel's range of local ports for outbound connections (Linux default 32768–60999). */
function ephemeralRange(): { from: number; to: number } {
  try {
    const [from, to] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (from && to && from <= to) return { from, to };
  } catch {
    /* not Linux, or no /proc */
  }
  return { from: 32768, to: 60999 };
}

/** The panel connection a change comes in on (the lock-out guard protects it). */
export interface Peer {
  address: string;
  localPort: number;
  /** The agent dialed the panel (reverse mode): `localPort` is the agent's end of that connection. */
  outbound?: boolean;
  /** Reports the steps of the change to that panel (CallContext.progress). */
  progress?: (message: string) => void;
  /** Records the change's intent in the agent's journal before it is applied (CallContext.intent). */
  intent?: (data: unknown) => Promise<void>;
}

/** What a firewall mutation records before applying: the rule set it leads to, and its reply once saved. */
export interface FirewallIntent {
  after: string;
  extra: Record<string, unknown>;
}

/** A digest of a rule set (the journal compares it with the saved one after a kill). */
export const stateDigest = (s: FirewallState): string =>
  createHash('sha256')
    .update(canonical(cloneState(s)))
    .digest('hex');

type ReplyDataFirewallList = ReplyData<'list firewall rules'>;

interface PendingChange {
  previous: FirewallState;
  dueAt: number;
  reason: string;
  timer: NodeJS.Timeout;
}

export interface FirewallDeps {
  iptables: IptablesAdapter;
  store: FirewallStore;
  settings: ResolvedFirewallSettings;
  logger: Logger;
  /** Tells every connected panel (auto-revert, expiry, changes). */
  broadcast(topic: string, data: unknown): void;
  /** The agent's configured port (0 when chosen by the OS; each call also knows the real one). */
  agentPort: () => number;
  /** Families to manage (default both; IPv4 only on a kernel booted without IPv6). */
  families?: readonly Family[];
  now?: () => number;
}

/** Longest single timer (setTimeout's limit is ~24.8 days); longer expiries re-arm. */
const MAX_TIMER_MS = 6 * 3600_000;

/**
 * PonIO's firewall on one host (or namespace): the rule set as data, applied atomically to
 * PonIO's own chains, guarded against locking out the panel, with confirm mode and auto-revert
 * for changes that close SSH or the agent port, and persisted for reboots.
 */
export class Firewall {
  private state: FirewallState = emptyState();
  private pending: PendingChange | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private readonly mutex = new KeyedMutex();
  private readonly now: () => number;
  private readonly families: readonly Family[];
  private stopped = false;

  constructor(private readonly d: FirewallDeps) {
    this.now = d.now ?? Date.now;
    this.families = d.families ?? FAMILIES;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run('firewall', fn);
  }

  /**
   * Restores the saved rule set (agent start): the saved file is the commit point of every
   * change, so whatever a killed agent had applied of a change it had not saved (one family
   * only, or a change waiting for confirmation) is undone here, in both families. With nothing
   * saved, PonIO's chains are taken away if a first change left them. A corrupt state file
   * stops the module.
   */
  async start(): Promise<void> {
    await this.locked(async () => {
      const saved = await this.d.store.load();
      if (saved === null) {
        await this.removeChains();
        return;
      }
      const pruned = this.pruneExpired(saved);
      await this.apply(pruned);
      this.state = pruned;
      // Also rewrites the boot-time files, which a kill may have left one change ahead.
      await this.persist(pruned);
      this.d.logger.info(
        { rules: pruned.rules.length, blocks: pruned.blocks.length, scope: this.d.settings.scope },
        'firewall rules restored',
      );
    });
    this.scheduleExpiry();
  }

  /** Agent shutdown: an unconfirmed change is reverted (like iptables-apply); the rest stays in force. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await this.locked(async () => {
      if (this.pending) await this.revertLocked('the agent is stopping');
    });
  }

  /**
   * Nothing saved yet: PonIO's chains and boot-time files (a first change killed before its
   * state was saved) are removed.
   */
  private async removeChains(): Promise<void> {
    await this.d.store.removeBootFiles();
    for (const family of this.families) {
      const snap = await this.d.iptables.snapshot(family);
      if (!snap.existed && !snap.hasJump) continue;
      await this.d.iptables.rollback({ ...snap, existed: false }, snap.hasJump);
      this.d.logger.warn({ family }, 'removed PonIO chains that no saved rule set accounts for');
    }
  }

  /**
   * Settles a change a killed agent left (after start(), which re-applied the saved rule set):
   * applied when the saved rule set is the one the change led to, else absent (it was undone).
   */
  recover(intent: unknown): { outcome: 'applied'; data: unknown } | { outcome: 'absent' } {
    const it = intent as Partial<FirewallIntent> | null;
    if (typeof it?.after !== 'string' || typeof it.extra !== 'object' || it.extra === null)
      throw new Error('unreadable firewall intent in the journal');
    if (stateDigest(this.state) !== it.after) return { outcome: 'absent' };
    return { outcome: 'applied', data: it.extra };
  }

  pendingView(): FirewallPending {
    if (!this.pending) return null;
    const { dueAt, reason } = this.pending;
    return { dueAt, msLeft: Math.max(0, Math.round(dueAt - this.now())), reason };
  }

  current(): FirewallState {
    return cloneState(this.state);
  }

  async list(): Promise<ReplyDataFirewallList> {
    const foreign: ReplyDataFirewallList['foreign'] = [];
    const now = this.now();
    let inSync = true;
    // Nothing to enforce yet (a new host): no PonIO chains is the expected state, not drift.
    const nothingToEnforce =
      !this.state.baseline && this.state.rules.length === 0 && activeBlocks(this.state, now).length === 0;
    for (const family of this.families) {
      const snap = await this.d.iptables.snapshot(family);
      for (const f of snap.foreign) foreign.push({ family, table: f.table, line: f.line });
      if (nothingToEnforce && !snap.hasJump && snap.own.length === 0) continue;
      const expected = countRendered(renderRestore(this.state, family, { insertJump: false, now }));
      if (!snap.hasJump || snap.own.length !== expected) inSync = false;
    }
    return {
      rules: this.state.rules.map((r) => ({ ...r })),
      blocks: activeBlocks(this.state, now).map((b) => ({ ...b })),
      baseline: this.state.baseline,
      pending: this.pendingView(),
      foreign,
      scope: this.d.settings.scope,
      confirmTimeoutSeconds: this.d.settings.confirmTimeoutSeconds,
      inSync,
    };
  }

  /**
   * Applies `mutate` to a copy of the rule set: refuses it when it would cut the panel's own
   * connection, applies it atomically, and either keeps it (persisted) or, when it closes SSH or
   * the agent port (or `forceConfirm` says why), holds it pending until `confirm firewall`.
   */
  async change(
    peer: Peer,
    mutate: (s: FirewallState, now: number) => FirewallState,
    opts: {
      forceConfirm?: string;
      noConfirm?: boolean;
      extra?: (after: FirewallState) => Record<string, unknown>;
    } = {},
  ): Promise<{ pending: FirewallPending }> {
    return this.locked(async () => {
      if (this.pending) {
        const at = new Date(this.pending.dueAt).toISOString().slice(11, 19);
        throw new RpcError(
          'failed-precondition',
          `A firewall change is waiting for confirmation (it reverts at ${at} UTC); confirm it or let it revert first.`,
        );
      }
      const now = this.now();
      const before = this.state;
      const after = mutate(this.pruneExpired(cloneState(before)), now);

      const step = peer.progress ?? ((): void => undefined);
      step('Checking that the change keeps the panel connected');
      const panelIp = validateIp(peer.address);
      let outboundRisk: string | null = null;
      if (panelIp.ok && peer.localPort > 0 && peer.outbound) {
        // Reverse mode: the replies on the agent's own connection to the panel must still get in.
        const ip = panelIp.value.address;
        if (isBlocked(outboundVerdict(after, ip, peer.localPort, now)))
          throw new RpcError(
            'failed-precondition',
            `Refused: this change would cut the agent’s own connection to the panel (replies from ${ip} to local TCP port ${peer.localPort}). Nothing was changed.`,
          );
        const range = ephemeralRange();
        const cut = ephemeralSamples(after, range).find(
          (port) =>
            isBlocked(outboundVerdict(after, ip, port, now)) &&
            !isBlocked(outboundVerdict(before, ip, port, now)),
        );
        if (cut !== undefined)
          outboundRisk = `the agent could not connect to the panel at ${ip} again after a reconnection (replies to local port ${cut} would be cut)`;
      } else if (panelIp.ok && peer.localPort > 0) {
        const v = verdictFor(after, panelIp.value.address, peer.localPort, now);
        if (isBlocked(v))
          throw new RpcError(
            'failed-precondition',
            `Refused: this change would ${v === 'drop' ? 'drop' : 'reject'} the panel’s own connection (from ${panelIp.value.address} to the agent on TCP port ${peer.localPort}). Nothing was changed.`,
          );
      } else {
        this.d.logger.warn({ peer }, 'no usable panel address: the lock-out guard only checks SSH');
      }

      // An outbound link's local port is ephemeral: its own check is above.
      const ports = [
        ...new Set(
          [...this.d.settings.sshPorts, peer.outbound ? 0 : peer.localPort, this.d.agentPort()].filter(
            (p) => p > 0,
          ),
        ),
      ];
      const risk =
        opts.forceConfirm ?? outboundRisk ?? (opts.noConfirm ? null : lostAccess(before, after, ports, now));

      // The reply a recovery gives when the change turns out saved (a saved change is never pending).
      const extra = { pending: null, ...opts.extra?.(after) };
      await peer.intent?.({ after: stateDigest(after), extra } satisfies FirewallIntent);
      await this.apply(after, step);
      if (risk !== null) {
        const seconds = this.d.settings.confirmTimeoutSeconds;
        const dueAt = now + seconds * 1000;
        const reason = `Applied in confirm mode because ${risk}. It reverts in ${seconds} s unless confirmed.`;
        const timer = setTimeout(() => void this.autoRevert(timer), seconds * 1000);
        this.pending = { previous: before, dueAt, reason, timer };
        this.state = after;
        this.d.logger.warn({ dueAt, risk }, 'firewall change pending confirmation');
        this.d.broadcast('firewall pending', { dueAt, reason, message: `Firewall: ${reason}` });
      } else {
        try {
          step('Saving the rule set for the next boot');
          await this.persist(after);
        } catch (e) {
          await this.apply(before).catch((err: unknown) =>
            this.d.logger.error({ err: (err as Error).message }, 'firewall rollback failed'),
          );
          throw new RpcError(
            'failed-precondition',
            `The rule set could not be saved (${(e as Error).message}); the previous rules are back in force.`,
          );
        }
        this.state = after;
      }
      this.scheduleExpiry();
      return { pending: this.pendingView() };
    });
  }

  /** Keeps a pending change. False when nothing was pending. */
  async confirm(intent?: (data: unknown) => Promise<void>): Promise<boolean> {
    return this.locked(async () => {
      const p = this.pending;
      if (!p) return false;
      await intent?.({ after: stateDigest(this.state), extra: { confirmed: true } } satisfies FirewallIntent);
      clearTimeout(p.timer);
      await this.persist(this.state);
      this.pending = null;
      this.d.logger.info('firewall change confirmed');
      this.d.broadcast('firewall confirmed', { message: 'Firewall change confirmed; it stays.' });
      this.scheduleExpiry();
      return true;
    });
  }

  private async autoRevert(timer: NodeJS.Timeout): Promise<void> {
    try {
      await this.locked(async () => {
        if (this.pending?.timer !== timer) return; // confirmed or reverted meanwhile
        await this.revertLocked('it was not confirmed in time');
      });
    } catch (e) {
      this.d.logger.error({ err: (e as Error).message }, 'firewall auto-revert failed');
    }
  }

  private async revertLocked(why: string): Promise<void> {
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.pending = null;
    const previous = this.pruneExpired(p.previous);
    await this.apply(previous);
    this.state = previous;
    await this.persist(previous);
    this.d.logger.warn({ why }, 'firewall change reverted');
    this.d.broadcast('firewall reverted', {
      message: `The pending firewall change was reverted: ${why}; the previous rules are back.`,
    });
    if (!this.stopped) this.scheduleExpiry();
  }

  private pruneExpired(s: FirewallState): FirewallState {
    const now = this.now();
    return { ...s, blocks: activeBlocks(s, now) };
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (this.stopped) return;
    const next = Math.min(...this.state.blocks.map((b) => b.expiresAt ?? Infinity));
    if (!Number.isFinite(next)) return;
    const delay = Math.min(Math.max(next - this.now(), 0) + 50, MAX_TIMER_MS);
    this.expiryTimer = setTimeout(() => void this.expire(), delay);
    this.expiryTimer.unref();
  }

  /** Removes expired blocks from the live rule set (waits while a change is pending). */
  private async expire(): Promise<void> {
    try {
      await this.locked(async () => {
        if (this.pending || this.stopped) return;
        const pruned = this.pruneExpired(this.state);
        if (pruned.blocks.length === this.state.blocks.length) return;
        const lifted = this.state.blocks.length - pruned.blocks.length;
        await this.apply(pruned);
        await this.persist(pruned);
        this.state = pruned;
        this.d.broadcast('firewall block expired', {
          message: `Firewall: ${lifted} block(s) expired and were lifted.`,
        });
      });
    } catch (e) {
      this.d.logger.error({ err: (e as Error).message }, 'removing expired blocks failed');
    }
    if (!this.pending) this.scheduleExpiry();
  }

  /**
   * Renders both families, has iptables-restore --test check them, applies them one transaction
   * per family, verifies what the kernel now holds, and puts PonIO's chains back on any failure.
   */
  private async apply(next: FirewallState, step: (message: string) => void = () => undefined): Promise<void> {
    const now = this.now();
    const ipt = this.d.iptables;
    const snaps: Snapshot[] = [];
    const inputs: string[] = [];
    for (const family of this.families) {
      const snap = await ipt.snapshot(family);
      snaps.push(snap);
      inputs.push(renderRestore(next, family, { insertJump: !snap.hasJump, now }));
    }
    step('Testing the rule set (iptables-restore --test)');
    for (const [i, family] of this.families.entries()) {
      const problem = await ipt.test(family, inputs[i] ?? '');
      if (problem !== null)
        throw new RpcError(
          'failed-precondition',
          `iptables-restore --test refused the ${family} rule set; nothing was changed: ${problem}`,
        );
    }
    const done: Snapshot[] = [];
    try {
      for (const [i, family] of this.families.entries()) {
        const input = inputs[i] ?? '';
        const snap = snaps[i];
        step(`Applying the ${family} rules`);
        await ipt.restore(family, input);
        killPoint();
        if (snap) done.push(snap);
        const problem = await ipt.verify(family, input);
        if (problem !== null)
          throw new RpcError(
            'failed-precondition',
            `The ${family} rules did not apply as expected: ${problem}`,
          );
      }
    } catch (e) {
      for (const snap of done.reverse()) {
        await ipt
          .rollback(snap, !snap.hasJump)
          .catch((err: unknown) =>
            this.d.logger.error(
              { err: (err as Error).message, family: snap.family },
              'firewall rollback failed',
            ),
          );
      }
      throw e;
    }
  }

  private async persist(s: FirewallState): Promise<void> {
    const now = this.now();
    await this.d.store.save(s, {
      ipv4: renderRestore(s, 'ipv4', { insertJump: true, now }),
      ipv6: renderRestore(s, 'ipv6', { insertJump: true, now }),
    });
  }
}
