import { Command } from 'commander';
import { PONIO_VERSION } from '../shared/protocol/index.ts';
import { loadPanelConfig, PanelConfigError } from './config.ts';
import { startPanel } from './main.ts';

function fail(message: string, code = 2): never {
  process.stderr.write(`ponio-panel: ${message}\n`);
  process.exit(code);
}

export function buildPanelCli(): Command {
  const program = new Command('ponio-panel').description('PonIO panel').version(PONIO_VERSION);
  program.showHelpAfterError();
  program
    .command('serve')
    .description('run the panel (HTTPS dashboard, REST API, agent connections)')
    .option('--config <file>', 'JSON config file')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'listen port (default 8443)')
    .option('--data-dir <dir>', 'data directory (default ./data)')
    .option('--public-url <url>', 'URL agents and browsers use to reach the panel')
    .action(async (o: Record<string, string | undefined>) => {
      let cfg;
      try {
        cfg = loadPanelConfig({
          config: o.config,
          host: o.host,
          port: o.port,
          dataDir: o.dataDir,
          publicUrl: o.publicUrl,
        });
      } catch (e) {
        if (e instanceof PanelConfigError) fail(e.message);
        throw e;
      }
      const panel = await startPanel(cfg);
      process.stdout.write(`PonIO panel: ${panel.url}\n`);
      const stop = (): void => {
        panel.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  return program;
}

export async function runPanelCli(argv: string[]): Promise<void> {
  await buildPanelCli().parseAsync(argv);
}
