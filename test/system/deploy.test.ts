// Deployment: the install scripts lay out exactly the documented files with the documented modes
// (docs/install.md) into a temporary root, are idempotent, refuse bad input without touching
// anything, and --uninstall removes everything; every shipped systemd unit passes
// `systemd-analyze verify`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireProgram } from '../helpers/programs.ts';
import { ROOT } from '../helpers/agent-process.ts';

let dist: string;

function sh(
  script: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', [script, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Every entry under root: "relative/path mode" (octal), symlinks as "path -> target". */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
      else {
        out.push(`${rel} ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`);
        if (st.isDirectory()) walk(p);
      }
    }
  };
  walk(root);
  return out;
}

const tempRoot = (): string => mkdtempSync(path.join(os.tmpdir(), 'ponio-deploy-root-'));

before(async () => {
  requireProgram('systemd-analyze', 'systemd');
  dist = mkdtempSync(path.join(os.tmpdir(), 'ponio-deploy-dist-'));
  const r = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/build.mjs'), '--out', dist],
      { timeout: 120_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`build failed: ${String(stderr)}`)) : resolve(String(stdout)),
    ),
  );
  assert.match(r, /built .*agent \d+ KB, panel \d+ KB/);
});

after(() => {
  if (dist) rmSync(dist, { recursive: true, force: true });
});

/** The agent's layout, as docs/install.md documents it. */
const AGENT_LAYOUT = [
  'etc 0755',
  'etc/ponio-agent 0700',
  'etc/ponio-agent/config.json 0600',
  'etc/systemd 0755',
  'etc/systemd/system 0755',
  'etc/systemd/system/ponio-agent.service 0644',
  'opt 0755',
  'opt/ponio-agent 0755',
  'opt/ponio-agent/install-agent.sh 0755',
  'opt/ponio-agent/ponio-agent.cjs 0755',
  'usr 0755',
  'usr/local 0755',
  'usr/local/bin 0755',
  'usr/local/bin/ponio-agent -> /opt/ponio-agent/ponio-agent.cjs',
  'var 0755',
  'var/lib 0755',
  'var/lib/ponio-agent 0700',
];

function expectedAgentLayout(): string[] {
  // The firewall's restore unit ships with the agent once it exists (issue: firewall).
  const extra = readdirSync(path.join(dist, 'agent')).includes('ponio-firewall-restore.service')
    ? ['etc/systemd/system/ponio-firewall-restore.service 0644']
    : [];
  return [...AGENT_LAYOUT, ...extra].sort();
}

describe('install-agent.sh into a temporary root', () => {
  test('lays out exactly the documented files and modes; the installed bundle runs', async () => {
    const root = tempRoot();
    try {
      const r = await sh(path.join(dist, 'agent/install-agent.sh'), ['--root', root]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(listing(root).sort(), expectedAgentLayout());
      // Empty: `ponio-agent enroll` fills in the port the panel expects; serve defaults to 0.0.0.0:7443.
      const cfg = JSON.parse(readFileSync(path.join(root, 'etc/ponio-agent/config.json'), 'utf8'));
      assert.deepEqual(cfg, {});
      const installed = readFileSync(path.join(root, 'opt/ponio-agent/ponio-agent.cjs'));
      assert.ok(installed.equals(readFileSync(path.join(dist, 'agent/ponio-agent.cjs'))));
      const v = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [path.join(root, 'opt/ponio-agent/ponio-agent.cjs'), '--version'],
          (e, o) => (e ? reject(new Error(e.message)) : resolve(String(o))),
        ),
      );
      assert.match(v.trim(), /^\d+\.\d+\.\d+/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('re-running is an upgrade: same layout, the admin’s config is kept', async () => {
    const root = tempRoot();
    try {
      assert.equal((await sh(path.join(dist, 'agent/install-agent.sh'), ['--root', root])).code, 0);
      const cfgFile = path.join(root, 'etc/ponio-agent/config.json');
      writeFileSync(cfgFile, '{ "listen": "10.0.0.5:7443" }\n', { mode: 0o600 });
      // Run the copy installed in /opt, as an admin upgrading would.
      const again = await sh(path.join(root, 'opt/ponio-agent/install-agent.sh'), [
        '--root',
        root,
        '--bundle',
        path.join(dist, 'agent/ponio-agent.cjs'),
        '--listen',
        '0.0.0.0:9999',
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(listing(root).sort(), expectedAgentLayout());
      assert.equal(readFileSync(cfgFile, 'utf8'), '{ "listen": "10.0.0.5:7443" }\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('upgrading an install of the ES module bundle (ponio-agent.mjs) removes it; unit and link name the .cjs', async () => {
    const root = tempRoot();
    try {
      assert.equal((await sh(path.join(dist, 'agent/install-agent.sh'), ['--root', root])).code, 0);
      // What an earlier release left: the bundle as ponio-agent.mjs, named by the link and the unit.
      const opt = path.join(root, 'opt/ponio-agent');
      renameSync(path.join(opt, 'ponio-agent.cjs'), path.join(opt, 'ponio-agent.mjs'));
      rmSync(path.join(root, 'usr/local/bin/ponio-agent'));
      symlinkSync('/opt/ponio-agent/ponio-agent.mjs', path.join(root, 'usr/local/bin/ponio-agent'));
      const unitFile = path.join(root, 'etc/systemd/system/ponio-agent.service');
      const unit = readFileSync(path.join(dist, 'agent/ponio-agent.service'), 'utf8');
      assert.match(unit, /^ExecStart=\S+ .*\/opt\/ponio-agent\/ponio-agent\.cjs serve /m);
      writeFileSync(unitFile, unit.replaceAll('ponio-agent.cjs', 'ponio-agent.mjs'));

      const r = await sh(path.join(dist, 'agent/install-agent.sh'), ['--root', root]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(listing(root).sort(), expectedAgentLayout(), 'no ponio-agent.mjs left');
      assert.equal(readFileSync(unitFile, 'utf8'), unit);
      const v = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [path.join(opt, 'ponio-agent.cjs'), '--version'], (e, o) =>
          e ? reject(new Error(e.message)) : resolve(String(o)),
        ),
      );
      assert.match(v.trim(), /^\d+\.\d+\.\d+/);

      // --uninstall removes the old file as well, should one still be there.
      writeFileSync(path.join(opt, 'ponio-agent.mjs'), '// an earlier release\n');
      const u = await sh(path.join(opt, 'install-agent.sh'), ['--root', root, '--uninstall']);
      assert.equal(u.code, 0, u.stderr);
      assert.deepEqual(listing(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('--uninstall removes everything it added', async () => {
    const root = tempRoot();
    try {
      assert.equal((await sh(path.join(dist, 'agent/install-agent.sh'), ['--root', root])).code, 0);
      const r = await sh(path.join(root, 'opt/ponio-agent/install-agent.sh'), [
        '--root',
        root,
        '--uninstall',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(listing(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('bad input is refused with a clear message and nothing is created', async () => {
    const root = tempRoot();
    const script = path.join(dist, 'agent/install-agent.sh');
    const cases: Array<[string[], RegExp]> = [
      [['--root', 'relative/dir'], /--root must be an absolute path/],
      [['--root', `${root}/$(touch x)`], /--root may contain only/],
      [['--root', `${root}/../etc`], /--root may contain only/],
      [['--root', root, '--listen', '0.0.0.0:7443;reboot'], /--listen must be HOST:PORT/],
      [['--root', root, '--listen', 'a\nb:1'], /may not contain newlines or control characters/],
      [['--root', root, '--listen', '0.0.0.0:7443\r'], /may not contain newlines or control characters/],
      [['--root', root, '--panel', 'https://p:8443'], /needs all of --panel, --token and --ca-pin/],
      [
        [
          '--root',
          root,
          '--panel',
          'https://p:8443`id`',
          '--token',
          'abcdefgh12',
          '--ca-pin',
          `sha256:${'a'.repeat(64)}`,
        ],
        /--panel must look like/,
      ],
      [
        [
          '--root',
          root,
          '--panel',
          'https://p:8443',
          '--token',
          "abc'; rm -rf /",
          '--ca-pin',
          `sha256:${'a'.repeat(64)}`,
        ],
        /--token has unexpected characters/,
      ],
      [
        ['--root', root, '--panel', 'https://p:8443', '--token', 'abcdefgh12', '--ca-pin', 'md5:abc'],
        /--ca-pin must be sha256:HEX/,
      ],
      [['--root', root, '--bogus'], /unknown option: --bogus/],
    ];
    try {
      for (const [args, message] of cases) {
        const r = await sh(script, args);
        assert.equal(r.code, 2, `${args.join(' ')} → exit ${r.code}`);
        assert.match(r.stderr, message);
        assert.deepEqual(listing(root), [], `${args.join(' ')} left files behind`);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('install-panel.sh into a temporary root', () => {
  test('lays out the documented files and modes, --uninstall removes them', async () => {
    const root = tempRoot();
    try {
      const r = await sh(path.join(dist, 'panel/install-panel.sh'), [
        '--root',
        root,
        '--public-url',
        'https://panel.example.com:8443',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const all = listing(root);
      const top = all.filter((l) => !l.startsWith('opt/ponio-panel/') || /^opt\/ponio-panel\/[^/]+ /.test(l));
      assert.deepEqual(top.sort(), [
        'etc 0755',
        'etc/ponio-panel 0750',
        'etc/ponio-panel/panel.json 0640',
        'etc/systemd 0755',
        'etc/systemd/system 0755',
        'etc/systemd/system/ponio-panel.service 0644',
        'opt 0755',
        'opt/ponio-panel 0755',
        'opt/ponio-panel/agent 0755',
        'opt/ponio-panel/install-panel.sh 0755',
        'opt/ponio-panel/node_modules 0755',
        'opt/ponio-panel/package.json 0644',
        'opt/ponio-panel/ponio-panel.mjs 0755',
        'opt/ponio-panel/public 0755',
        'opt/ponio-panel/views 0755',
        'usr 0755',
        'usr/local 0755',
        'usr/local/bin 0755',
        'usr/local/bin/ponio-panel -> /opt/ponio-panel/ponio-panel.mjs',
        'var 0755',
        'var/lib 0755',
        'var/lib/ponio-panel 0700',
      ]);
      // The panel carries the agent bundle and installer so it can hand them to new hosts.
      assert.ok(all.includes('opt/ponio-panel/agent/ponio-agent.cjs 0755'));
      assert.ok(all.includes('opt/ponio-panel/agent/install-agent.sh 0755'));
      assert.ok(
        all.some((l) =>
          l.startsWith('opt/ponio-panel/node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
        ),
      );
      assert.ok(all.some((l) => l.startsWith('opt/ponio-panel/views/layout.pug ')));
      // Nothing in the program tree is writable by group or others.
      const writable = all.filter((l) => / 0\d[2367]\d$| 0\d\d[2367]$/.test(l));
      assert.deepEqual(writable, []);
      assert.deepEqual(JSON.parse(readFileSync(path.join(root, 'etc/ponio-panel/panel.json'), 'utf8')), {
        host: '0.0.0.0',
        port: 8443,
        dataDir: '/var/lib/ponio-panel',
        publicUrl: 'https://panel.example.com:8443',
      });
      const un = await sh(path.join(root, 'opt/ponio-panel/install-panel.sh'), [
        '--root',
        root,
        '--uninstall',
      ]);
      assert.equal(un.code, 0, un.stderr);
      assert.deepEqual(listing(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('systemd units', () => {
  const unitDir = path.join(ROOT, 'deploy/systemd');
  const units = readdirSync(unitDir).filter((f) => f.endsWith('.service'));

  test('the agent and panel units are shipped', () => {
    assert.ok(units.includes('ponio-agent.service'));
    assert.ok(units.includes('ponio-panel.service'));
  });

  for (const unit of units) {
    test(`systemd-analyze verify ${unit}`, async () => {
      const r = await new Promise<{ code: number; out: string }>((resolve) =>
        execFile('systemd-analyze', ['verify', path.join(unitDir, unit)], (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code ?? 1) : 0, out: String(stdout) + String(stderr) }),
        ),
      );
      assert.equal(r.code, 0, r.out);
      // verify prints warnings but still exits 0 for some mistakes: none are accepted.
      assert.equal(r.out.trim(), '', r.out);
    });
  }

  test('the panel runs unprivileged and hardened; the agent keeps only what it needs', () => {
    const panel = readFileSync(path.join(unitDir, 'ponio-panel.service'), 'utf8');
    for (const line of [
      'User=ponio',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/ponio-panel',
      'PrivateTmp=yes',
      'ProtectHome=yes',
      'Restart=on-failure',
    ])
      assert.ok(panel.split('\n').includes(line), `ponio-panel.service lacks ${line}`);
    const agent = readFileSync(path.join(unitDir, 'ponio-agent.service'), 'utf8');
    for (const line of [
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'ProtectKernelModules=yes',
      'ProtectControlGroups=yes',
      'RestrictSUIDSGID=yes',
      'LockPersonality=yes',
      'RestrictRealtime=yes',
      'ProtectSystem=strict',
      'Restart=on-failure',
    ])
      assert.ok(agent.split('\n').includes(line), `ponio-agent.service lacks ${line}`);
    assert.match(agent, /^ReadWritePaths=/m);
  });
});
