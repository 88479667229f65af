import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
// Also this module's schemas (the router validates its events with them): built when it loads.
import { FIREWALL_LIMITS, type FirewallRule } from '../../../shared/protocol/events/firewall.ts';
import { RpcError } from '../../../shared/protocol/errors.ts';
import { validateIp, type Cidr } from '../../../shared/validate/network.ts';
import { whichBinary } from '../../os/exec.ts';
import type { AgentModule, CallContext, ModuleContext } from '../types.ts';
import { Firewall, type Peer } from './firewall.ts';
import { IptablesAdapter } from './iptables.ts';
import { FIREWALL_BINARIES, firewallAvailability } from './probe.ts';
import { familyOf } from './render.ts';
import { resolveFirewallSettings } from './settings.ts';
import { FirewallStore, type FirewallState } from './state.ts';

/** A single network at most: IPv4 /24 or longer, IPv6 /64 or longer. */
export const isNarrow = (c: Cidr): boolean => c.prefix >= (c.version === 4 ? 24 : 64);

const peerOf = (ctx: CallContext): Peer => ({
  address: ctx.peer.address,
  localPort: ctx.peer.localPort,
  ...(ctx.peer.direction === 'outbound' ? { outbound: true } : {}),
  progress: (m) => ctx.progress(m),
  intent: (data) => ctx.intent(data),
});

function newRuleId(state: FirewallState): string {
  for (;;) {
    const id = `r${randomBytes(4).toString('hex')}`;
    if (!state.rules.some((r) => r.id === id)) return id;
  }
}

const sameRule = (a: Omit<FirewallRule, 'id' | 'createdAt' | 'comment'>, b: FirewallRule): boolean =>
  a.action === b.action &&
  a.protocol === b.protocol &&
  a.family === b.family &&
  a.port === b.port &&
  a.source === b.source;

/** The firewall module (iptables + ip6tables, PonIO's own chains only). */
export function createFirewallModule(ctx: ModuleContext): AgentModule<'firewall'> {
  const settings = resolveFirewallSettings(ctx.moduleSettings?.firewall, ctx.layout.mode);
  const missing = FIREWALL_BINARIES.filter((b) => whichBinary(b) === null);
  const fw = settings.ok
    ? new Firewall({
        iptables: new IptablesAdapter(ctx.exec, settings.value.execNetns),
        store: new FirewallStore(ctx.layout.stateDir),
        settings: settings.value,
        logger: ctx.logger,
        broadcast: (topic, data) => ctx.broadcast(topic, data),
        agentPort: () => ctx.agentPort,
        // A kernel booted with ipv6.disable=1 has no IPv6 stack: manage IPv4 only.
        families: existsSync('/proc/sys/net/ipv6') ? ['ipv4', 'ipv6'] : ['ipv4'],
      })
    : null;
  const need = (): Firewall => {
    if (!fw) throw new RpcError('unsupported', settings.ok ? 'firewall unavailable' : settings.reason);
    return fw;
  };

  return {
    name: 'firewall',
    availability: () => firewallAvailability(settings, missing),
    start: () => need().start(),
    stop: () => need().stop(),
    recover: (_event, intent) => Promise.resolve(need().recover(intent)),
    writesIn: () => [ctx.layout.stateDir],
    handlers: {
      'list firewall rules': () => need().list(),

      'add firewall rule': async (req, call) => {
        if (req.port !== undefined && req.protocol !== 'tcp' && req.protocol !== 'udp')
          throw new RpcError('invalid-argument', 'A port only makes sense with protocol tcp or udp.');
        const source = req.source ?? null;
        const sourceFamily = source === null ? null : familyOf(source.text);
        if (sourceFamily !== null && req.family !== undefined && req.family !== sourceFamily)
          throw new RpcError(
            'invalid-argument',
            `The source ${source?.text ?? ''} is an ${sourceFamily} range, so the rule cannot be family ${req.family}.`,
          );
        let rule: FirewallRule | undefined;
        const result = await need().change(
          peerOf(call),
          (s, now) => {
            if (s.rules.length >= FIREWALL_LIMITS.rules)
              throw new RpcError(
                'failed-precondition',
                `PonIO’s chain already holds ${FIREWALL_LIMITS.rules} rules; delete some first.`,
              );
            if (req.position !== undefined && req.position > s.rules.length + 1)
              throw new RpcError(
                'invalid-argument',
                `position ${req.position} is past the end (there are ${s.rules.length} rules).`,
              );
            rule = {
              id: newRuleId(s),
              action: req.action,
              protocol: req.protocol,
              family: sourceFamily ?? req.family ?? 'both',
              port: req.port?.text ?? null,
              source: source?.text ?? null,
              comment: req.comment ?? '',
              createdAt: now,
            };
            s.rules.splice(req.position === undefined ? s.rules.length : req.position - 1, 0, rule);
            return s;
          },
          { extra: () => ({ rule }) },
        );
        if (!rule) throw new Error('rule not created');
        return { ...result, rule };
      },

      'delete firewall rule': async (req, call) =>
        need().change(peerOf(call), (s) => {
          const i = s.rules.findIndex((r) => r.id === req.id);
          if (i < 0) throw new RpcError('not-found', `There is no firewall rule ${req.id}.`);
          s.rules.splice(i, 1);
          return s;
        }),

      'block ip': async (req, call) => {
        let block: FirewallState['blocks'][number] | undefined;
        const result = await need().change(
          peerOf(call),
          (s, now) => {
            if (s.blocks.some((b) => b.address === req.address.text))
              throw new RpcError('already-exists', `${req.address.text} is already blocked.`);
            if (s.blocks.length >= FIREWALL_LIMITS.blocks)
              throw new RpcError(
                'failed-precondition',
                `The block list already holds ${FIREWALL_LIMITS.blocks} entries; remove some first.`,
              );
            block = {
              address: req.address.text,
              expiresAt: req.expiresInSeconds === undefined ? null : now + req.expiresInSeconds * 1000,
              comment: req.comment ?? '',
              createdAt: now,
            };
            s.blocks.push(block);
            return s;
          },
          // Blocking one address or a small network is what the block list is for: no confirm
          // mode (the panel itself is still protected). A wide range is checked like a rule.
          { noConfirm: isNarrow(req.address), extra: () => ({ block }) },
        );
        if (!block) throw new Error('block not created');
        return { ...result, block };
      },

      'unblock ip': async (req, call) =>
        need().change(peerOf(call), (s) => {
          const i = s.blocks.findIndex((b) => b.address === req.address.text);
          if (i < 0) throw new RpcError('not-found', `${req.address.text} is not blocked.`);
          s.blocks.splice(i, 1);
          return s;
        }),

      'apply firewall baseline': async (_req, call) => {
        const peer = peerOf(call);
        const sshPorts = settings.ok ? settings.value.sshPorts : [22];
        const result = await need().change(
          peer,
          (s, now) => {
            s.baseline = true;
            const panelIp = validateIp(peer.address);
            const wanted: Omit<FirewallRule, 'id' | 'createdAt'>[] = [
              ...[80, 443].map((p) => ({
                action: 'allow' as const,
                protocol: 'tcp' as const,
                family: 'both' as const,
                port: String(p),
                source: null,
                comment: p === 80 ? 'baseline: HTTP' : 'baseline: HTTPS',
              })),
              ...sshPorts.map((p) => ({
                action: 'allow' as const,
                protocol: 'tcp' as const,
                family: 'both' as const,
                port: String(p),
                source: null,
                comment: 'baseline: SSH',
              })),
            ];
            if (peer.localPort > 0 && panelIp.ok)
              wanted.push({
                action: 'allow',
                protocol: 'tcp',
                family: panelIp.value.version === 4 ? 'ipv4' : 'ipv6',
                port: String(peer.localPort),
                source: panelIp.value.address,
                comment: 'baseline: PonIO agent, from the panel only',
              });
            for (const w of wanted) {
              if (s.rules.some((r) => sameRule(w, r))) continue;
              s.rules.push({ ...w, id: newRuleId(s), createdAt: now });
            }
            return s;
          },
          {
            forceConfirm: 'the recommended baseline rejects everything it does not allow',
            extra: (after) => ({ rules: after.rules }),
          },
        );
        return { ...result, rules: need().current().rules };
      },

      'remove firewall baseline': async (_req, call) =>
        need().change(peerOf(call), (s) => {
          s.baseline = false;
          return s;
        }),

      'reapply firewall': async (_req, call) => need().change(peerOf(call), (s) => s),

      'confirm firewall': async (_req, call) => ({ confirmed: await need().confirm((d) => call.intent(d)) }),
    },
  };
}
