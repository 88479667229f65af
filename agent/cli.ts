import { Command, Option } from 'commander';
import { PONIO_VERSION } from '../shared/protocol/version.ts';
import { checkListen, ConfigError, loadAgentConfig } from './config.ts';
import { EnrollError, enroll } from './enroll.ts';

/** One line on stderr, whatever the message holds. */
const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

function fail(message: string, code = 2): never {
  process.stderr.write(`ponio-agent: ${oneLine(message)}\n`);
  process.exit(code);
}

/**
 * Commander's own usage errors (unknown option or command, bad choice, missing option or
 * argument) as one line `ponio-agent: …` with exit code 2, like every other configuration
 * problem; --help and --version still exit 0. Subcommands inherit both settings.
 */
function usageErrorsAsOneLine(program: Command): void {
  program
    .configureOutput({
      outputError: (str, write) => {
        write(`ponio-agent: ${oneLine(str.replace(/^error: /, ''))}\n`);
      },
    })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

export function buildAgentCli(): Command {
  const program = new Command('ponio-agent')
    .description('PonIO agent: applies panel requests to this host')
    .version(PONIO_VERSION);
  usageErrorsAsOneLine(program);

  program
    .command('serve')
    .description('serve the panel over mutual TLS')
    .option('--config <file>', 'JSON config file (flags and PONIO_AGENT_* variables override it)')
    .option('--listen <host:port>', 'address to listen on (default 0.0.0.0:7443)')
    .option(
      '--connect <urls>',
      "reverse mode: dial the panel's agent listener (wss://HOST:PORT, comma-separated, tried in turn)",
    )
    .option('--cert <file>', 'agent certificate (PEM)')
    .option('--key <file>', 'agent private key (PEM)')
    .option('--ca <file>', 'the panel CA certificate to trust (PEM)')
    .option('--sandbox <dir>', 'sandbox mode: everything under DIR, private service instances on loopback')
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
    .action(async (o: Record<string, string | undefined>) => {
      let cfg;
      try {
        cfg = loadAgentConfig({
          config: o.config,
          listen: o.listen,
          connect: o.connect,
          cert: o.cert,
          key: o.key,
          ca: o.ca,
          sandbox: o.sandbox,
          logLevel: o.logLevel,
        });
      } catch (e) {
        if (e instanceof ConfigError) fail(e.message);
        throw e;
      }
      let agent;
      try {
        // Loaded here so `enroll` does not load every module.
        const { startAgent } = await import('./main.ts');
        agent = await startAgent(cfg);
      } catch (e) {
        if (e instanceof ConfigError) fail(e.message);
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE')
          fail(`cannot listen on ${cfg.host}:${cfg.port}: address already in use`);
        if (err.code === 'EACCES') fail(`cannot listen on ${cfg.host}:${cfg.port}: permission denied`);
        fail(`cannot start: ${err.message}`, 1);
      }
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        agent.logger.info('stopping');
        agent.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });

  program
    .command('enroll')
    .description('enroll this host with a panel: key generated here, panel CA checked against the pin first')
    .requiredOption('--panel <url>', 'the panel, e.g. https://panel.example:8443')
    .requiredOption('--token <token>', 'the single-use join token shown by the panel')
    .requiredOption('--ca-pin <sha256:HEX>', "the panel CA's fingerprint shown by the panel")
    .option('--sandbox <dir>', 'sandbox mode: config under DIR/etc/ponio-agent instead of /etc/ponio-agent')
    .option(
      '--listen <host:port>',
      'address the agent will listen on (default 0.0.0.0:<port the panel expects>)',
    )
    .option('--force', 'enroll again even if a valid certificate is installed (needs a new token)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      try {
        if (typeof o.listen === 'string') checkListen(o.listen, '--listen');
      } catch (e) {
        if (e instanceof ConfigError) fail(e.message);
        throw e;
      }
      try {
        const r = await enroll({
          panel: String(o.panel),
          token: String(o.token),
          caPin: String(o.caPin),
          ...(typeof o.sandbox === 'string' ? { sandbox: o.sandbox } : {}),
          ...(typeof o.listen === 'string' ? { listen: o.listen } : {}),
          force: o.force === true,
        });
        const until = r.notAfter.toISOString();
        process.stdout.write(
          r.alreadyEnrolled
            ? `Already enrolled as host ${r.hostId} (certificate valid until ${until}); nothing changed.\n` +
                `To enroll again, ask the panel admin for a new token and add --force.\n`
            : `Enrolled as host ${r.hostId}; certificate valid until ${until}.\n` +
                `Files written to ${r.configDir} (agent.key, agent.crt, ca.crt, config.json).\n`,
        );
        process.stdout.write(`Next step: ${r.nextStep}\n`);
      } catch (e) {
        if (e instanceof EnrollError) fail(e.message, 1);
        fail(`enrollment failed: ${(e as Error).message}`, 1);
      }
    });

  return program;
}

export async function runAgentCli(argv: string[]): Promise<void> {
  await buildAgentCli().parseAsync(argv);
}
