// The real `ponio-agent` and `ponio-panel` command lines: every kind of bad input gives exit code 2
// and exactly one line on stderr naming the problem; --help and --version still exit 0.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/agent-process.ts';
import { makeTestPki, type AgentFiles, type TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/tmp.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any PONIO_* setting of the machine running the tests. */
const baseEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PONIO_')));

function run(bin: 'ponio-agent' | 'ponio-panel', args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', `${bin}.js`), ...args],
      // A case that wrongly started an agent or panel is killed (and then fails on its code).
      { cwd: ROOT, timeout: 30_000, killSignal: 'SIGKILL', env: { ...baseEnv(), NO_COLOR: '1', ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Exit code 2, nothing on stdout, exactly one non-empty line on stderr that matches `line`. */
function assertOneLine(r: Run, line: RegExp, prefix: string): void {
  const shown = `exit ${String(r.code)}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`;
  assert.equal(r.code, 2, shown);
  assert.equal(r.stdout, '', shown);
  assert.ok(r.stderr.endsWith('\n'), shown);
  const lines = r.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, shown);
  const first = lines[0] ?? '';
  assert.ok(first.startsWith(`${prefix}: `) && first.length > prefix.length + 2, shown);
  assert.match(first, line, shown);
}

const dir = tempDir('ponio-agent-cli-');
let pki: TestPki;
let a: AgentFiles;
let b: AgentFiles;
/** `serve` on a free loopback port with agent a's TLS files, or the ones given instead. */
const serveWith = (files: { cert?: string; key?: string; ca?: string } = {}): string[] => [
  'serve',
  '--listen',
  '127.0.0.1:0',
  '--cert',
  files.cert ?? a.certFile,
  '--key',
  files.key ?? a.keyFile,
  '--ca',
  files.ca ?? a.caFile,
];
const write = (name: string, content: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, content);
  return f;
};

before(async () => {
  pki = await makeTestPki();
  a = await pki.agent('web1');
  b = await pki.agent('web1');
});

describe('ponio-agent: bad input exits 2 with one line naming the problem', { concurrency: true }, () => {
  const cases: { name: string; args: () => string[]; env?: () => NodeJS.ProcessEnv; line: RegExp }[] = [
    { name: 'an unknown flag', args: () => ['serve', '--bogus'], line: /unknown option '--bogus'/ },
    {
      name: 'an unknown command (with the suggestion on the same line)',
      args: () => ['serv'],
      line: /unknown command 'serv' \(Did you mean serve\?\)/,
    },
    {
      name: 'an extra argument',
      args: () => ['serve', 'extra'],
      line: /too many arguments for 'serve'/,
    },
    {
      name: 'a bad --log-level choice',
      args: () => ['serve', '--log-level', 'loud'],
      line: /option '--log-level <level>' argument 'loud' is invalid\. Allowed choices are fatal, /,
    },
    {
      name: 'an option without its value',
      args: () => ['serve', '--listen'],
      line: /option '--listen <host:port>' argument missing/,
    },
    {
      name: 'a missing required option (enroll)',
      args: () => ['enroll', '--token', 't', '--ca-pin', 'sha256:00'],
      line: /required option '--panel <url>' not specified/,
    },
    {
      name: 'a bad --listen (serve)',
      args: () => ['serve', '--listen', 'nonsense'],
      line: /invalid agent configuration: listen: must be HOST:PORT, e\.g\. 0\.0\.0\.0:7443 \(from --listen\)$/,
    },
    {
      name: 'a bad --listen (enroll, before anything is contacted)',
      args: () => [
        'enroll',
        '--panel',
        'https://127.0.0.1:1',
        '--token',
        't',
        '--ca-pin',
        'x',
        '--listen',
        '1.2.3.4',
      ],
      line: /invalid --listen "1\.2\.3\.4": must be HOST:PORT/,
    },
    {
      name: 'a missing certificate file',
      args: () => serveWith({ cert: '/nonexistent.crt' }),
      line: /cannot read certificate \/nonexistent\.crt: ENOENT$/,
    },
    {
      name: 'a missing key file',
      args: () => serveWith({ key: '/nonexistent.key' }),
      line: /cannot read key \/nonexistent\.key: ENOENT$/,
    },
    {
      name: 'a certificate file that is not a certificate',
      args: () => serveWith({ cert: write('text.crt', 'hello') }),
      line: /certificate .*text\.crt is not a PEM file$/,
    },
    {
      name: 'a certificate and key that do not match',
      args: () => serveWith({ key: b.keyFile }),
      line: /certificate \S+ and key \S+ do not match$/,
    },
    {
      name: 'a config file that is not JSON',
      args: () => ['serve', '--config', write('bad.json', '{\n  "listen": "127.0.0.1:0",\n  oops\n}\n')],
      line: /config file \S+bad\.json is not a JSON object: /,
    },
    {
      name: 'a missing config file',
      args: () => ['serve', '--config', path.join(dir, 'none.json')],
      line: /cannot read config file \S+none\.json: ENOENT$/,
    },
    {
      name: 'an unknown setting in the config file',
      args: () => ['serve', '--config', write('typo.json', JSON.stringify({ lisen: '127.0.0.1:0' }))],
      line: /unknown setting\(s\) lisen \(from config file \S+typo\.json\)$/,
    },
    {
      name: 'a bad PONIO_AGENT_LISTEN',
      args: () => ['serve'],
      env: () => ({ PONIO_AGENT_LISTEN: 'nowhere' }),
      line: /listen: must be HOST:PORT.*\(from PONIO_AGENT_LISTEN\)$/,
    },
    {
      name: 'a bad PONIO_AGENT_LOG_LEVEL',
      args: () => ['serve'],
      env: () => ({ PONIO_AGENT_LOG_LEVEL: 'loud' }),
      line: /invalid agent configuration: logLevel: .*\(from PONIO_AGENT_LOG_LEVEL\)$/,
    },
    {
      name: 'a PONIO_AGENT_CONFIG that does not exist',
      args: () => ['serve'],
      env: () => ({ PONIO_AGENT_CONFIG: path.join(dir, 'env-none.json') }),
      line: /cannot read config file \S+env-none\.json: ENOENT$/,
    },
    {
      name: 'a missing PONIO_AGENT_CERT file',
      args: () => ['serve', '--listen', '127.0.0.1:0', '--key', a.keyFile, '--ca', a.caFile],
      env: () => ({ PONIO_AGENT_CERT: '/nonexistent-env.crt' }),
      line: /cannot read certificate \/nonexistent-env\.crt: ENOENT$/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      assertOneLine(await run('ponio-agent', c.args(), c.env?.() ?? {}), c.line, 'ponio-agent');
    });
  }

  test('an unreadable certificate file (a directory; and mode 000 unless root)', async () => {
    const r = await run('ponio-agent', [
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--cert',
      dir,
      '--key',
      a.keyFile,
    ]);
    assertOneLine(r, /cannot read certificate \S+: EISDIR$/, 'ponio-agent');
    if (process.getuid?.() === 0) return; // root reads any file
    const locked = write('locked.crt', a.certPem);
    chmodSync(locked, 0o000);
    const l = await run('ponio-agent', [
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--cert',
      locked,
      '--key',
      a.keyFile,
    ]);
    assertOneLine(l, /cannot read certificate \S+locked\.crt: EACCES$/, 'ponio-agent');
  });

  test('flags win over a bad environment variable', async () => {
    // A bad PONIO_AGENT_LISTEN is overridden by --listen, so the error is the next problem: the cert.
    const r = await run('ponio-agent', ['serve', '--listen', '127.0.0.1:0', '--cert', '/nonexistent.crt'], {
      PONIO_AGENT_LISTEN: 'nowhere',
    });
    assertOneLine(r, /cannot read certificate \/nonexistent\.crt/, 'ponio-agent');
  });
});

describe('ponio-agent: help and version still exit 0', { concurrency: true }, () => {
  for (const args of [['--help'], ['serve', '--help'], ['help', 'enroll'], ['--version']]) {
    test(args.join(' '), async () => {
      const r = await run('ponio-agent', args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, args[0] === '--version' ? /^\d+\.\d+\.\d+/ : /^Usage: ponio-agent/);
    });
  }
});

describe('ponio-panel: bad flags exit 2 with one line too', { concurrency: true }, () => {
  const cases: { args: string[]; line: RegExp }[] = [
    { args: ['serve', '--bogus'], line: /unknown option '--bogus'/ },
    { args: ['serve', '--log-level', 'loud'], line: /argument 'loud' is invalid\. Allowed choices are/ },
    { args: ['user', 'add'], line: /missing required argument 'username'/ },
    {
      args: ['host', 'add', 'web1'],
      line: /give the host address \(--address HOST\[:PORT\]\), or --reverse/,
    },
    { args: ['bogus'], line: /unknown command 'bogus'/ },
    { args: ['token', 'create', 'x', '--role', 'root'], line: /argument 'root' is invalid/ },
  ];
  for (const c of cases) {
    test(c.args.join(' '), async () => {
      assertOneLine(await run('ponio-panel', c.args), c.line, 'ponio-panel');
    });
  }
  test('--help exits 0', async () => {
    const r = await run('ponio-panel', ['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: ponio-panel/);
  });
});
