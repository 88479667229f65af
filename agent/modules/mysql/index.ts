import { RpcError } from '../../../shared/protocol/errors.ts';
// This module's schemas (the router validates its events with them): built when it loads.
import '../../../shared/protocol/events/mysql.ts';
import { validateCharset } from '../../../shared/validate/mysql.ts';
import { available, unavailable, type AgentModule, type CallContext, type ModuleContext } from '../types.ts';
import { MysqlAdmin } from './admin.ts';
import { toRpcError } from './errors.ts';
import { recoverMysql, type Intent } from './recover.ts';
import { sandboxServer, systemServer, type MysqlServer } from './server.ts';
import { parseMysqlSettings, type MysqlSettings } from './settings.ts';
import { databaseBackupSource } from './backup-source.ts';

const intentOf =
  (call: CallContext): Intent =>
  (d) =>
    call.intent(d);

/**
 * MySQL/MariaDB databases and accounts (issue 6). System mode talks to the host's server through
 * its local socket as the configured admin; sandbox mode starts a private MariaDB (server.ts).
 * Names are validated by the protocol schemas and quoted by sql.ts; passwords reach the server
 * only as hashes and are never logged or returned.
 */
export function createMysqlModule(ctx: ModuleContext): AgentModule<'mysql'> {
  let server: MysqlServer | null = null;
  let settingsError: string | null = null;
  let settings: MysqlSettings = {};
  const raw = ctx.moduleSettings?.mysql;
  if (raw === false) {
    settingsError = 'The mysql module is turned off in the agent config (modules.mysql is false).';
  } else {
    try {
      settings = parseMysqlSettings(raw);
      server =
        ctx.layout.mode === 'sandbox'
          ? sandboxServer(ctx.layout, settings, ctx.exec, ctx.logger)
          : systemServer(settings);
    } catch (e) {
      settingsError = (e as Error).message;
    }
  }
  const srv = (): MysqlServer => {
    if (!server) throw new RpcError('unsupported', settingsError ?? 'mysql is not configured');
    return server;
  };
  const admin = new MysqlAdmin(() => srv().pool(), server?.adminUser ?? 'root', ctx.logger);

  /** Runs one operation and turns driver errors into replies an admin understands. */
  const op = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw toRpcError(e, srv().socketPath, srv().adminUser);
    }
  };

  return {
    name: 'mysql',
    availability() {
      if (settingsError !== null) return unavailable(settingsError);
      const reason = server?.unavailableReason() ?? null;
      return reason === null ? available() : unavailable(reason);
    },
    start: () => srv().start(),
    stop: () => srv().stop(),
    service: () => server?.service(),
    recover: (_event, intent) => op(() => recoverMysql(admin, intent)),
    backupSource: { databases: databaseBackupSource(srv, admin, settings, ctx.layout.runDir) },
    handlers: {
      'list databases': () => op(async () => ({ databases: await admin.listDatabases() })),
      'create database': (req, call) =>
        op(() => {
          const cs = validateCharset(req.charset, req.collation);
          if (!cs.ok) throw new RpcError('invalid-argument', cs.message);
          return admin.createDatabase(req.name, cs.value.charset, cs.value.collation, intentOf(call));
        }),
      'drop database': (req, call) =>
        op(async () => {
          await admin.dropDatabase(req.name, intentOf(call));
          return { name: req.name };
        }),
      'list database users': () => op(async () => ({ users: await admin.listUsers() })),
      'create database user': (req, call) =>
        op(() => admin.createUser(req.user, req.host, req.password, intentOf(call))),
      'set database password': (req, call) =>
        op(() => admin.setPassword(req.user, req.host, req.password, intentOf(call))),
      'grant database': (req, call) =>
        op(() => admin.grant(req.user, req.host, req.database, req.privileges, intentOf(call))),
      'revoke database': (req, call) =>
        op(() => admin.revoke(req.user, req.host, req.database, intentOf(call))),
      'drop database user': (req, call) =>
        op(async () => {
          await admin.dropUser(req.user, req.host, intentOf(call));
          return { user: req.user, host: req.host };
        }),
    },
  };
}
