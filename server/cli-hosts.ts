import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { loadPanelConfig, PanelConfigError, type PanelConfig } from './config.ts';
import { openDatabase, type Db } from './db/database.ts';
import { AuditLog, type Actor } from './db/audit.ts';
import { HostAdmission, EnrollmentError, type NewHost } from './hosts/enrollment.ts';
import { removeHostRecord } from './hosts/revocation.ts';
import { configuredAgentUrl } from './hosts/host-mode.ts';
import { findAgentRelease, servedCertificatePem, spkiPin } from './http/agent-downloads.ts';

type Flags = Record<string, string | boolean | undefined>;

class CliError extends Error {}
/** A command line that cannot work (exit code 2, like commander's own usage errors). */
class UsageError extends CliError {}

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

function configOf(o: Flags): PanelConfig {
  const s = (k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
  try {
    return loadPanelConfig({ config: s('config'), dataDir: s('dataDir'), publicUrl: s('publicUrl') });
  } catch (e) {
    if (e instanceof PanelConfigError) throw new CliError(e.message);
    throw e;
  }
}

function open(o: Flags): { db: Db; audit: AuditLog; admission: HostAdmission } {
  const cfg = configOf(o);
  let caPem: string;
  try {
    caPem = readFileSync(path.join(cfg.dataDir, 'pki', 'ca.crt'), 'utf8');
  } catch {
    throw new CliError(
      `no panel CA in ${cfg.dataDir}/pki; start the panel once (ponio-panel serve) so it creates its CA, or pass --data-dir.`,
    );
  }
  const db = openDatabase(path.join(cfg.dataDir, 'panel.db'));
  const audit = new AuditLog(db);
  const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? os.hostname() : cfg.host;
  const publicUrl = cfg.publicUrl ?? `https://${host.includes(':') ? `[${host}]` : host}:${cfg.port}`;
  const agentUrl = configuredAgentUrl({ ...cfg, publicUrl });
  return {
    db,
    audit,
    admission: new HostAdmission({
      agentUrl: () => agentUrl,
      db,
      audit,
      caPem: () => caPem,
      publicUrl: () => publicUrl,
      // The certificate the running panel serves: tlsCert, else the one it keeps in its pki dir.
      installPin: () =>
        findAgentRelease(cfg)
          ? spkiPin(
              servedCertificatePem(cfg, () =>
                readFileSync(path.join(cfg.dataDir, 'pki', 'server.crt'), 'utf8'),
              ),
            )
          : null,
    }),
  };
}

const cliActor = (): Actor => ({ kind: 'cli', name: `cli:${os.userInfo().username}`, role: 'admin' });

const dataOptions = (c: Command): Command =>
  c
    .option('--config <file>', 'panel JSON config file')
    .option('--data-dir <dir>', 'panel data directory (default ./data, or PONIO_PANEL_DATA_DIR)');

function run(fn: (o: Flags, arg: string) => void): (...args: unknown[]) => void {
  return (...args: unknown[]) => {
    // commander passes (…positional, options, command)
    const o = (args[args.length - 2] ?? {}) as Flags;
    const arg = typeof args[0] === 'string' ? args[0] : '';
    try {
      fn(o, arg);
    } catch (e) {
      const msg = e instanceof CliError || e instanceof EnrollmentError ? e.message : String(e);
      process.stderr.write(`ponio-panel: ${msg}\n`);
      process.exitCode =
        e instanceof UsageError ? 2 : e instanceof CliError || e instanceof EnrollmentError ? 1 : 2;
    }
  };
}

function printNewHost(n: NewHost, json: boolean): void {
  if (json) {
    out(
      JSON.stringify({
        host: n.host,
        token: n.token,
        tokenExpiresAt: n.expiresAt,
        caPin: n.caPin,
        command: n.command,
        installCommand: n.installCommand,
      }),
    );
    return;
  }
  out(
    n.host.mode === 'reverse'
      ? `Host ${n.host.name} (id ${n.host.id}) in reverse mode: its agent connects to the panel.`
      : `Host ${n.host.name} (id ${n.host.id}) at ${n.host.address}:${n.host.port}.`,
  );
  const until = new Date(n.expiresAt).toISOString();
  if (n.installCommand) {
    out(`Join token valid until ${until} (single use). Run this as root on the host (installs and enrolls):`);
    out('');
    out(`  ${n.installCommand}`);
    out('');
    out('With the agent already installed (docs/install.md), this enrolls it:');
    out('');
    out(`  ${n.command}`);
    out('');
    return;
  }
  out(`Join token valid until ${until} (single use). On the host, install the agent from dist/agent`);
  out('(sh agent/install-agent.sh, docs/install.md), then run as root:');
  out('');
  out(`  ${n.command}`);
  out('');
}

/**
 * `ponio-panel host add|list|token|remove` (issue 3). They work on the panel's database and CA
 * directly, so they also work while the panel runs: a host removed here is revoked at once and
 * the running panel drops its connection within seconds (reconcile loop).
 */
export function registerHostCommands(program: Command): void {
  const host = program.command('host').description('add, list and remove managed hosts');

  dataOptions(
    host
      .command('add <name>')
      .description('add a host and print the one-time enrollment command to run on it')
      .option('--address <host[:port]>', 'DNS name or IP the panel reaches the agent at (port default 7443)')
      .option('--reverse', 'the panel cannot reach this host: the agent connects to the panel (no --address)')
      .option('--public-url <url>', 'the panel URL agents use (default from the config)')
      .option('--json', 'JSON output'),
  ).action(
    run((o, name) => {
      if (o.reverse !== true && typeof o.address !== 'string')
        throw new UsageError(
          'give the host address (--address HOST[:PORT]), or --reverse if the panel cannot reach the host',
        );
      const { db, admission } = open(o);
      try {
        printNewHost(
          admission.addHost(cliActor(), {
            name,
            address: o.address,
            mode: o.reverse === true ? 'reverse' : 'forward',
          }),
          o.json === true,
        );
      } finally {
        db.close();
      }
    }),
  );

  dataOptions(
    host
      .command('token <host>')
      .description('issue a new join token for a host (revokes its unused ones; allows enrolling it again)')
      .option('--public-url <url>', 'the panel URL agents use (default from the config)')
      .option('--json', 'JSON output'),
  ).action(
    run((o, id) => {
      const { db, admission } = open(o);
      try {
        printNewHost(admission.issueToken(cliActor(), id), o.json === true);
      } finally {
        db.close();
      }
    }),
  );

  dataOptions(host.command('list').description('list hosts').option('--json', 'JSON output')).action(
    run((o) => {
      const { db, admission } = open(o);
      try {
        const rows = admission.repo.list().map((h) => ({
          id: h.id,
          name: h.name,
          mode: h.mode,
          // A reverse host has no address: its agent dials the panel.
          address:
            h.mode === 'reverse'
              ? null
              : `${h.address.includes(':') ? `[${h.address}]` : h.address}:${h.port}`,
          status: h.status,
          certificate: h.cert_serial,
          notAfter: h.cert_not_after ? new Date(h.cert_not_after).toISOString() : null,
          pendingToken: admission.tokens.pending(h.id) !== null,
        }));
        if (o.json === true) {
          out(JSON.stringify(rows));
          return;
        }
        if (rows.length === 0) {
          out('No hosts. Add one with: ponio-panel host add NAME --address HOST[:PORT]');
          return;
        }
        for (const r of rows)
          out(
            `${r.id.padEnd(24)} ${r.name.padEnd(24)} ${(r.address ?? 'reverse (agent dials in)').padEnd(28)} ${r.status.padEnd(9)} ${r.notAfter ? `certificate until ${r.notAfter}` : r.pendingToken ? 'token issued' : 'no token'}`,
          );
      } finally {
        db.close();
      }
    }),
  );

  dataOptions(
    host
      .command('mode <host> <mode>')
      .description(
        'switch a host between forward (the panel connects to it) and reverse (it connects to the panel); keeps its certificate',
      )
      .option(
        '--address <host[:port]>',
        'forward mode: where the panel reaches the agent (port default 7443)',
      )
      .option('--json', 'JSON output'),
  ).action((id: string, mode: string, o: Flags, cmd: unknown) => {
    // run() reads the options from the second-to-last argument.
    run((flags) => {
      const { db, admission } = open(flags);
      try {
        const sw = admission.switchMode(cliActor(), id, { mode, address: flags.address });
        const steps = sw.steps;
        if (flags.json === true) {
          out(
            JSON.stringify({
              host: sw.host,
              previous: sw.previous,
              steps,
              command: sw.command,
              tokenExpiresAt: sw.expiresAt,
            }),
          );
          return;
        }
        out(
          sw.host.mode === 'reverse'
            ? `Host ${sw.host.name} is now in reverse mode: the panel waits for its agent to connect.`
            : `Host ${sw.host.name} is now in forward mode: the panel connects to ${sw.host.address}:${sw.host.port}.`,
        );
        out('A running panel links it the new way within seconds. On the host:');
        for (const step of steps) out(`  - ${step}`);
      } finally {
        db.close();
      }
    })(id, o, cmd);
  });

  dataOptions(
    host
      .command('remove <host>')
      .description('remove a host: revoke its certificate, drop its connection, never reconnect'),
  ).action(
    run((o, id) => {
      const { db, audit } = open(o);
      try {
        const { host: h, revoked } = removeHostRecord(db, audit, cliActor(), id);
        out(
          `Removed host ${h.name} (id ${h.id}); revoked certificate${revoked.length === 1 ? '' : 's'}: ${revoked.join(', ') || 'none'}.`,
        );
      } finally {
        db.close();
      }
    }),
  );
}
