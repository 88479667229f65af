import { Command, Option } from 'commander';
import path from 'node:path';
import { PONIO_VERSION } from '../shared/protocol/index.ts';
import { loadPanelConfig, PanelConfigError, type PanelConfig } from './config.ts';
import { openDatabase, type Db } from './db/database.ts';
import { Accounts } from './auth/accounts.ts';
import { ApiTokens } from './auth/api-tokens.ts';
import { AuditLog } from './db/audit.ts';
import { UserInputError, userView } from './auth/users.ts';
import { isRole, ROLES } from './auth/roles.ts';
import { randomPassword } from './auth/passwords.ts';
import type { DevSandbox } from './dev-sandbox.ts';
import { registerHostCommands } from './cli-hosts.ts';
import { registerJobCommands } from './cli-jobs.ts';
import { describeGrants, highestRole, parseGrantText } from './auth/scope.ts';
import { parseSelector } from '../shared/validate/labels.ts';
import { TwoFactorRepo } from './db/two-factor.ts';

function fail(message: string, code = 2): never {
  process.stderr.write(`ponio-panel: ${message}\n`);
  process.exit(code);
}

/**
 * Commander's own usage errors (unknown option or command, bad choice, missing option or
 * argument) as one line `ponio-panel: …` with exit code 2, like the panel's other configuration
 * errors; --help and --version still exit 0. Subcommands inherit both settings.
 */
function usageErrorsAsOneLine(program: Command): void {
  program
    .configureOutput({
      outputError: (str, write) => {
        const line = str
          .replace(/^error: /, '')
          .replace(/\s*\n\s*/g, ' ')
          .trim();
        write(`ponio-panel: ${line}\n`);
      },
    })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

type Flags = Record<string, string | boolean | undefined>;

function configFrom(o: Flags): PanelConfig {
  try {
    const s = (k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
    return loadPanelConfig({
      config: s('config'),
      host: s('host'),
      port: s('port'),
      dataDir: s('dataDir'),
      publicUrl: s('publicUrl'),
      logLevel: s('logLevel'),
      trustProxy: s('trustProxy'),
      agentListen: s('agentListen'),
    });
  } catch (e) {
    if (e instanceof PanelConfigError) fail(e.message);
    throw e;
  }
}

const dataOptions = (c: Command): Command =>
  c
    .option('--config <file>', 'JSON config file')
    .option('--data-dir <dir>', 'data directory (default ./data, or PONIO_PANEL_DATA_DIR)');

/** Opens the panel database for an offline command (works while the panel runs: SQLite WAL). */
function openData(o: Flags): { db: Db; accounts: Accounts; tokens: ApiTokens; audit: AuditLog } {
  const cfg = configFrom(o);
  const db = openDatabase(path.join(cfg.dataDir, 'panel.db'));
  return { db, accounts: new Accounts(db), tokens: new ApiTokens(db), audit: new AuditLog(db) };
}

const CLI_ACTOR = { kind: 'cli', name: 'cli', role: 'admin' } as const;

async function readStdinPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function userError(e: unknown): never {
  if (e instanceof UserInputError) fail(e.message, e.code === 'invalid-argument' ? 2 : 1);
  throw e;
}

export function buildPanelCli(): Command {
  const program = new Command('ponio-panel').description('PonIO panel').version(PONIO_VERSION);
  usageErrorsAsOneLine(program);
  program
    .command('serve')
    .description('run the panel (HTTPS dashboard, REST API, agent connections)')
    .option('--config <file>', 'JSON config file')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'listen port (default 8443)')
    .option('--data-dir <dir>', 'data directory (default ./data)')
    .option('--public-url <url>', 'URL agents and browsers use to reach the panel')
    .option(
      '--agent-listen <host:port|off>',
      'where reverse-mode agents dial in (default 0.0.0.0:7444; off disables it)',
    )
    .option(
      '--trust-proxy <value>',
      'believe X-Forwarded-For from these proxies: addresses, subnets or loopback (comma-separated)',
    )
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .option(
      '--dev-sandbox',
      'also run a local sandbox host (npm start): a real agent under <data-dir>/sandbox',
    )
    .option('--no-sandbox', 'with --dev-sandbox: do not start the sandbox host')
    .option(
      '--sandbox-reverse',
      "with --dev-sandbox: the sandbox host runs in reverse mode (its agent dials the panel's agent listener)",
    )
    .action(async (o: Flags) => {
      const dev = o.devSandbox === true && o.sandbox !== false;
      if (o.devSandbox === true && o.logLevel === undefined && !process.env.PONIO_PANEL_LOG_LEVEL)
        o.logLevel = 'warn';
      const cfg = configFrom(o);
      // Loaded here so the offline commands (user, token) start fast.
      const { startPanel } = await import('./main.ts');
      const { startDevSandbox } = await import('./dev-sandbox.ts');
      let panel;
      try {
        panel = await startPanel(cfg);
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { listen?: string };
        // `listen` is set when the agent listener (--agent-listen) could not start.
        const where = err.listen ? `${err.listen} for agents (--agent-listen)` : `${cfg.host}:${cfg.port}`;
        if (err.code === 'EADDRINUSE') fail(`cannot listen on ${where}: address already in use`);
        if (err.code === 'EACCES') fail(`cannot listen on ${where}: permission denied`);
        throw e;
      }
      const first = await panel.ctx.accounts.ensureFirstAdmin();
      out(`PonIO panel: ${panel.url}`);
      if (first) {
        out('');
        out('  First run: an admin account was created. This password is shown only once:');
        out(`    username: ${first.username}`);
        out(`    password: ${first.password}`);
        out(`  Or choose your own password within the hour: ${panel.url}/setup?token=${first.setupToken}`);
        out('');
      }
      out(`  CA fingerprint (for ponio-agent enroll --ca-pin): ${panel.ctx.pki.caFingerprint()}`);
      let sandbox: DevSandbox | null = null;
      if (dev) {
        const listener = panel.agentListener;
        if (o.sandboxReverse === true && !listener)
          fail('--sandbox-reverse needs the agent listener: do not turn it off (--agent-listen)');
        sandbox = await startDevSandbox(
          panel.ctx,
          o.sandboxReverse === true && listener ? { connect: `wss://127.0.0.1:${listener.port}` } : {},
        );
        out(`  Sandbox host: starting a local agent (log: ${sandbox.logFile})…`);
        sandbox.online.then(
          () => out(`  Sandbox host: online — open ${panel.url}/hosts/${sandbox?.hostId ?? ''}`),
          (e: unknown) => out(`  Sandbox host: not online: ${(e as Error).message}`),
        );
      }
      out('  Press Ctrl-C to stop.');
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        out('Stopping…');
        (async () => {
          await panel.close();
          if (sandbox) await sandbox.stop();
        })().then(
          () => process.exit(0),
          (e: unknown) => {
            process.stderr.write(`ponio-panel: stop failed: ${(e as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });

  const user = program.command('user').description('manage dashboard accounts (recovery: user passwd admin)');
  dataOptions(
    user
      .command('add <username>')
      .description('create an account; prints a random password unless --password-stdin')
      .addOption(new Option('--role <role>', 'role').choices([...ROLES]).default('viewer'))
      .option('--password-stdin', 'read the password from standard input'),
  ).action(async (username: string, o: Flags) => {
    const { db, accounts, audit } = openData(o);
    try {
      const password = o.passwordStdin ? await readStdinPassword() : randomPassword();
      const role = isRole(o.role) ? o.role : 'viewer';
      const row = await accounts.users.create({ username, password, role }).catch(userError);
      audit.write({
        actor: CLI_ACTOR,
        hostId: null,
        action: 'user add',
        params: { username, role },
        ok: true,
      });
      out(`created ${row.username} (${row.role})`);
      if (!o.passwordStdin) out(`password: ${password}`);
    } finally {
      db.close();
    }
  });
  dataOptions(
    user
      .command('passwd <username>')
      .description(
        'set a new password (prints a random one unless --password-stdin); signs the user out everywhere',
      )
      .option('--password-stdin', 'read the password from standard input')
      .option('--enable', 'also re-enable a disabled account'),
  ).action(async (username: string, o: Flags) => {
    const { db, accounts, audit } = openData(o);
    try {
      const u = accounts.users.getByName(username);
      if (!u) fail(`no user named ${username}`, 1);
      const password = o.passwordStdin ? await readStdinPassword() : randomPassword();
      await accounts.users.setPassword(u.id, password).catch(userError);
      if (o.enable && u.disabled === 1) accounts.users.update(u.id, { disabled: false });
      accounts.endUserSessions(u.id);
      audit.write({ actor: CLI_ACTOR, hostId: null, action: 'user passwd', params: { username }, ok: true });
      out(`password of ${u.username} changed`);
      if (!o.passwordStdin) out(`password: ${password}`);
    } finally {
      db.close();
    }
  });
  dataOptions(user.command('list').description('list accounts').option('--json', 'JSON output')).action(
    (o: Flags) => {
      const { db, accounts } = openData(o);
      try {
        const users = accounts.users.list().map(userView);
        if (o.json) out(JSON.stringify(users, null, 2));
        else
          for (const u of users)
            out(`${u.username.padEnd(24)} ${u.role.padEnd(9)} ${u.disabled ? 'disabled' : 'enabled'}`);
      } finally {
        db.close();
      }
    },
  );

  dataOptions(
    user
      .command('grants <username> [grants...]')
      .description(
        'show or replace host grants: role:selector each (operator:role=web, viewer:*); --all-hosts clears them',
      )
      .option('--all-hosts', 'remove every grant: the user has their role on all hosts again'),
  ).action((username: string, grants: string[], o: Flags) => {
    const { db, accounts, audit } = openData(o);
    try {
      const u = accounts.users.getByName(username);
      if (!u) fail(`no user named ${username}`, 1);
      if (grants.length > 0 || o.allHosts) {
        if (u.role === 'admin') fail(`${u.username} is an admin: admins act on the whole panel`);
        const parsed = parseGrantText(o.allHosts ? '' : grants.join('\n'));
        if (!parsed.ok) fail(parsed.message);
        accounts.grants.set(u.id, parsed.value, highestRole(parsed.value) ?? u.role);
        audit.write({
          actor: CLI_ACTOR,
          hostId: null,
          action: 'user grants',
          params: { username: u.username, grants: parsed.value },
          ok: true,
          message: describeGrants(parsed.value),
        });
      }
      const now = accounts.grants.of(u.id);
      const role = accounts.users.get(u.id)?.role ?? u.role;
      out(`${u.username}: ${now.length === 0 ? `${role} on all hosts` : describeGrants(now)}`);
    } finally {
      db.close();
    }
  });

  dataOptions(
    user
      .command('reset-2fa <username>')
      .description(
        'remove every second factor of a user who lost their device (authenticator, passkeys, recovery codes); signs them out',
      ),
  ).action((username: string, o: Flags) => {
    const { db, accounts, audit } = openData(o);
    try {
      const u = accounts.users.getByName(username);
      if (!u) fail(`no user named ${username}`, 1);
      const r = new TwoFactorRepo(db).resetAll(u.id);
      accounts.endUserSessions(u.id);
      audit.write({
        actor: CLI_ACTOR,
        hostId: null,
        action: 'user 2fa reset',
        params: { username: u.username, ...r },
        ok: true,
      });
      out(
        `two-factor sign-in of ${u.username} reset (${r.totp ? 'authenticator app, ' : ''}${r.credentials} passkey(s), ${r.recoveryCodes} recovery code(s) removed)`,
      );
    } finally {
      db.close();
    }
  });

  const token = program.command('token').description('manage REST API tokens');
  dataOptions(
    token
      .command('create <name>')
      .description('create an API token (shown once)')
      .addOption(new Option('--role <role>', 'role').choices([...ROLES]).default('viewer'))
      .option('--expires-days <days>', 'expire after this many days')
      .option('--selector <selector>', 'only hosts matching this label selector, e.g. role=web'),
  ).action((name: string, o: Flags) => {
    if (!/^[\w .@-]{1,64}$/.test(name))
      fail('the token name must be 1–64 letters, digits, spaces or . _ @ -');
    const days = o.expiresDays === undefined ? null : Number(o.expiresDays);
    if (days !== null && (!Number.isInteger(days) || days < 1 || days > 3650))
      fail('--expires-days must be a whole number of days between 1 and 3650');
    let selector: string | null = null;
    if (typeof o.selector === 'string') {
      const p = parseSelector(o.selector);
      if (!p.ok) fail(p.message);
      if (o.role === 'admin') fail('an admin token is panel-wide; --selector needs operator or viewer');
      selector = o.selector.trim();
    }
    const { db, tokens, audit } = openData(o);
    try {
      const role = isRole(o.role) ? o.role : 'viewer';
      const { token: secret, row } = tokens.create({
        name,
        role,
        selector,
        createdBy: null,
        expiresAt: days === null ? null : Date.now() + days * 86_400_000,
      });
      audit.write({
        actor: CLI_ACTOR,
        hostId: null,
        action: 'token create',
        params: { name, role, selector },
        ok: true,
      });
      out(
        `token ${row.id} (${row.name}, ${row.role}${selector ? ` on ${selector}` : ''}) — shown only once:`,
      );
      out(secret);
    } finally {
      db.close();
    }
  });
  dataOptions(token.command('revoke <id>').description('revoke an API token by id')).action(
    (id: string, o: Flags) => {
      const { db, tokens, audit } = openData(o);
      try {
        if (!/^\d{1,12}$/.test(id)) fail('the token id is a number (see the API tokens page)');
        if (!tokens.revoke(Number(id))) fail(`no live token with id ${id}`, 1);
        audit.write({
          actor: CLI_ACTOR,
          hostId: null,
          action: 'token revoke',
          params: { id: Number(id) },
          ok: true,
        });
        out(`token ${id} revoked`);
      } finally {
        db.close();
      }
    },
  );
  dataOptions(token.command('list').description('list API tokens').option('--json', 'JSON output')).action(
    (o: Flags) => {
      const { db, tokens } = openData(o);
      try {
        const rows = tokens.list();
        if (o.json) out(JSON.stringify(rows, null, 2));
        else
          for (const t of rows)
            out(
              `${String(t.id).padEnd(5)} ${t.name.padEnd(24)} ${t.role.padEnd(9)} ${t.prefix}… ${t.revoked_at ? 'revoked' : 'live'}`,
            );
      } finally {
        db.close();
      }
    },
  );
  registerHostCommands(program);
  registerJobCommands(program);
  return program;
}

export async function runPanelCli(argv: string[]): Promise<void> {
  await buildPanelCli().parseAsync(argv);
}
