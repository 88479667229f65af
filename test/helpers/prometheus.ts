import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from './enroll.ts';
import { requireProgram } from './programs.ts';
import { tempDir } from './tmp.ts';

export interface RunningPrometheus {
  url: string;
  /** Instant query; the samples' labels and values. */
  query(expr: string): Promise<{ labels: Record<string, string>; value: number }[]>;
  /** Polls `expr` until `ok(values)` holds (bounded by timeoutMs), returns the last values. */
  waitFor(expr: string, ok: (values: number[]) => boolean, timeoutMs?: number): Promise<number[]>;
  output(): string;
  stop(): Promise<void>;
}

/** `promtool ARGS`, with stdin when given; resolves with the exit code and output (never throws). */
export async function promtool(args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  const bin = requireProgram('promtool', 'prometheus');
  return new Promise((resolve) => {
    const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
    p.stdin.end(stdin ?? '');
  });
}

/**
 * A real Prometheus server (Debian's `prometheus`) on a free loopback port, with its own data
 * dir, scraping `target` every second over HTTPS with a bearer token: the scrape config an
 * operator writes (deploy/monitoring/prometheus.yml).
 */
export async function startPrometheus(target: {
  hostPort: string;
  caPem: string;
  token: string;
  rulesFile?: string;
}): Promise<RunningPrometheus> {
  const bin = requireProgram('prometheus', 'prometheus');
  const dir = tempDir('ponio-prom-');
  writeFileSync(path.join(dir, 'ca.crt'), target.caPem);
  writeFileSync(path.join(dir, 'token'), target.token, { mode: 0o600 });
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    ...(target.rulesFile ? ['rule_files:', `  - ${JSON.stringify(target.rulesFile)}`] : []),
    'scrape_configs:',
    '  - job_name: ponio',
    '    scheme: https',
    '    metrics_path: /metrics',
    '    authorization:',
    `      credentials_file: ${JSON.stringify(path.join(dir, 'token'))}`,
    '    tls_config:',
    `      ca_file: ${JSON.stringify(path.join(dir, 'ca.crt'))}`,
    '    static_configs:',
    `      - targets: [${JSON.stringify(target.hostPort)}]`,
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  const check = await promtool(['check', 'config', path.join(dir, 'prometheus.yml')]);
  if (check.code !== 0) throw new Error(`promtool refused the test's Prometheus config:\n${check.out}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(
    bin,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const query: RunningPrometheus['query'] = async (expr) => {
    const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await r.json()) as {
      status: string;
      error?: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error ?? r.status}`);
    return (body.data?.result ?? []).map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
  };
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  // Ready when its API answers (bounded).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`prometheus exited:\n${out}`);
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    query,
    async waitFor(expr, ok, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      let last: number[] = [];
      while (Date.now() < end) {
        last = (await query(expr)).map((s) => s.value);
        if (ok(last)) return last;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(
        `${expr} never satisfied the test within ${timeoutMs} ms (last: ${JSON.stringify(last)})`,
      );
    },
    output: () => out,
    stop,
  };
}
