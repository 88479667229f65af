import { RpcError } from '../../../shared/protocol/errors.ts';
import type { Binary, Exec, ExecResult } from '../../os/exec.ts';
import { BLOCK_CHAIN, CHAIN, countRendered, parseSave, type Family } from './render.ts';

const BINS: Record<Family, { save: Binary; restore: Binary }> = {
  ipv4: { save: 'iptables-save', restore: 'iptables-restore' },
  ipv6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

const firstLines = (r: ExecResult): string =>
  (r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`).split('\n').slice(0, 8).join('\n');

export interface Snapshot {
  family: Family;
  /** PonIO's chains existed. */
  existed: boolean;
  own: string[];
  hasJump: boolean;
}

/**
 * iptables for one host or namespace: reads with *-save, writes only with *-restore --noflush
 * (one transaction per family, tested first), never one call per rule.
 */
export class IptablesAdapter {
  constructor(
    private readonly exec: Exec,
    private readonly netns: string | undefined,
  ) {}

  private run(bin: Binary, args: string[], input?: string): Promise<ExecResult> {
    return this.exec(bin, args, {
      timeoutMs: 30_000,
      ...(this.netns !== undefined ? { netns: this.netns } : {}),
      ...(input !== undefined ? { input } : {}),
    });
  }

  async save(family: Family): Promise<string> {
    const r = await this.run(BINS[family].save, []);
    if (r.code !== 0) throw new RpcError('unavailable', `${BINS[family].save} failed: ${firstLines(r)}`);
    return r.stdout;
  }

  async snapshot(family: Family): Promise<Snapshot & { foreign: { table: string; line: string }[] }> {
    const text = await this.save(family);
    const p = parseSave(text);
    const existed = text.split('\n').some((l) => l.startsWith(`:${CHAIN} `));
    return { family, existed, own: p.own, hasJump: p.hasJump, foreign: p.foreign };
  }

  /** `iptables-restore --test`: null when the input is accepted, else the checker's output. */
  async test(family: Family, input: string): Promise<string | null> {
    const r = await this.run(BINS[family].restore, ['--test', '--noflush'], input);
    return r.code === 0 ? null : firstLines(r);
  }

  /** Applies one family's input atomically; throws failed-precondition with the output. */
  async restore(family: Family, input: string): Promise<void> {
    const r = await this.run(BINS[family].restore, ['--noflush'], input);
    if (r.code !== 0)
      throw new RpcError(
        'failed-precondition',
        `${BINS[family].restore} refused the rule set: ${firstLines(r)}`,
      );
  }

  /** Checks that PonIO's chains now hold exactly what was rendered and INPUT jumps to them. */
  async verify(family: Family, rendered: string): Promise<string | null> {
    const p = parseSave(await this.save(family));
    if (!p.hasJump) return `INPUT does not jump to ${CHAIN}`;
    const want = countRendered(rendered);
    if (p.own.length !== want) return `${CHAIN} holds ${p.own.length} rules, expected ${want}`;
    return null;
  }

  /** Puts PonIO's chains back exactly as the snapshot had them. */
  async rollback(s: Snapshot, jumpInserted: boolean): Promise<void> {
    const lines = ['*filter'];
    if (s.existed) {
      lines.push(`:${CHAIN} - [0:0]`, `:${BLOCK_CHAIN} - [0:0]`, ...s.own);
      if (jumpInserted) lines.push(`-D INPUT -j ${CHAIN}`);
    } else {
      if (jumpInserted) lines.push(`-D INPUT -j ${CHAIN}`);
      lines.push(`-F ${CHAIN}`, `-F ${BLOCK_CHAIN}`, `-X ${CHAIN}`, `-X ${BLOCK_CHAIN}`);
    }
    lines.push('COMMIT', '');
    await this.restore(s.family, lines.join('\n'));
  }
}
