// create-website: `create website` end to end through the panel's REST API (HTTPS → panel →
// mutual-TLS RPC → agent → site tree + vhost + Apache config test + graceful reload of a real
// private Apache), p50/p99 over ≥ 50 sites, next to one bare `apache2 -t` on the same config,
// measured in the same run (one bare test after every create, so both see the config grow and
// the same machine noise). Target (issue 4): create p50 ≤ 4 × bare config test p50.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { startTestPanel } from '../test/helpers/panel.ts';
import { count, latencyStats, round, type Bench, type BenchResult } from './lib.ts';

const timeBareConfigTest = (conf: string): Promise<bigint> =>
  new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    execFile('/usr/sbin/apache2', ['-t', '-f', conf], (err) => {
      if (err) reject(new Error(`apache2 -t failed: ${err.message}`));
      else resolve(process.hrtime.bigint() - t);
    });
  });

export const bench: Bench = {
  name: 'create-website',
  async run(): Promise<BenchResult[]> {
    const sites = count(60, 6);
    const t = await startTestPanel();
    let sandbox: string | null = null;
    let agent: { stop(): Promise<void> } | null = null;
    try {
      const host = await t.addSandboxHost('bench-web');
      sandbox = host.sandboxDir;
      agent = host.agent;
      const conf = path.join(sandbox, 'etc/apache2/apache2.conf');
      const url = '/api/v1/hosts/bench-web/websites';
      // Warm-up: JIT, TLS sessions, the panel's token check, Apache's first graceful.
      for (let i = 0; i < 3; i++) {
        const r = await t.request('POST', url, { body: { domain: `warm-${i}.bench.test` } });
        if (r.status !== 201) throw new Error(`warm-up create failed: ${r.status} ${r.text}`);
        await timeBareConfigTest(conf);
      }
      const createNs: bigint[] = [];
      const bareNs: bigint[] = [];
      for (let i = 0; i < sites; i++) {
        const started = process.hrtime.bigint();
        const r = await t.request('POST', url, { body: { domain: `site-${i}.bench.test` } });
        createNs.push(process.hrtime.bigint() - started);
        if (r.status !== 201) throw new Error(`create site-${i}: ${r.status} ${r.text}`);
        bareNs.push(await timeBareConfigTest(conf));
      }
      const list = await t.request<{ data: { websites: unknown[] } }>('GET', url);
      const create = latencyStats(createNs);
      const bare = latencyStats(bareNs);
      return [
        {
          bench: 'create-website',
          path: 'panel REST API → agent → Apache (sandbox)',
          sites,
          sites_at_end: list.body.data.websites.length,
          create_p50_ms: round(create.p50_us / 1000, 2),
          create_p99_ms: round(create.p99_us / 1000, 2),
          create_max_ms: round(create.max_us / 1000, 2),
          bare_apache2_t_p50_ms: round(bare.p50_us / 1000, 2),
          bare_apache2_t_p99_ms: round(bare.p99_us / 1000, 2),
          ratio_p50: round(create.p50_us / bare.p50_us, 2),
          target_ratio: 4,
          meets_target: create.p50_us <= 4 * bare.p50_us,
        },
      ];
    } finally {
      // Stop the agent (and with it the sandbox's Apache, proftpd, MariaDB) even when the
      // panel's close fails; a second stop is harmless.
      await t.close().catch(() => undefined);
      await agent?.stop().catch(() => undefined);
      if (sandbox) rmSync(sandbox, { recursive: true, force: true });
      rmSync(t.dataDir, { recursive: true, force: true });
    }
  },
};
