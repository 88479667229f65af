// The Debian packages of a build (npm run build; docs/install.md "Debian packages"):
//   deb/ponio-agent_<version>_all.deb    the agent bundle (pure JavaScript), its units
//   deb/ponio-panel_<version>_<arch>.deb the built panel (its better-sqlite3 addon is native)
// made with dpkg-deb from a generated control file. The maintainer scripts are the ones
// debhelper's dh_installsystemd generates (enable on install, restart on upgrade, mask on remove,
// purge the state), plus users, directories and permissions; each file's config is a conffile,
// so an upgrade keeps what the admin (or `ponio-agent enroll`) changed in it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const MAINTAINER = 'PonIO maintainers <maintainers@ponio.invalid>';
const HOMEPAGE = 'https://github.com/ponio/ponio';

function findDpkgDeb() {
  for (const d of ['/usr/bin', '/bin', '/usr/local/bin']) {
    try {
      statSync(path.join(d, 'dpkg-deb'));
      return path.join(d, 'dpkg-deb');
    } catch {
      /* next */
    }
  }
  return null;
}

const unitSnippets = (units, { start }) => {
  const list = units.map((u) => `'${u}'`).join(' ');
  return {
    postinst: `
# Generated like dh_installsystemd's snippets.
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
	for unit in ${list}; do
		deb-systemd-helper unmask "$unit" >/dev/null || true
		if deb-systemd-helper --quiet was-enabled "$unit"; then
			deb-systemd-helper enable "$unit" >/dev/null || true
		else
			deb-systemd-helper update-state "$unit" >/dev/null || true
		fi
	done
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		${start}
	fi
fi
`,
    prerm: `
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop ${list} >/dev/null || true
fi
`,
    postrm: `
if [ "$1" = "remove" ] && command -v deb-systemd-helper >/dev/null; then
	deb-systemd-helper mask ${list} >/dev/null || true
fi
if [ "$1" = "purge" ] && command -v deb-systemd-helper >/dev/null; then
	deb-systemd-helper purge ${list} >/dev/null || true
	deb-systemd-helper unmask ${list} >/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
`,
  };
};

/** The agent package: where each file goes, and its maintainer scripts. */
function agentPackage(dist) {
  const units = ['ponio-agent.service', 'ponio-firewall-restore.service'];
  const s = unitSnippets(units, {
    // Started (restarted on upgrade) once enrolled; before that `ponio-agent enroll` says what to run.
    start: `if [ -f /etc/ponio-agent/agent.crt ]; then deb-systemd-invoke restart 'ponio-agent.service' >/dev/null || true; fi`,
  });
  return {
    name: 'ponio-agent',
    arch: 'all',
    // Debian 13's nodejs, or NodeSource's (Debian 12 and Ubuntu 24.04 ship 18).
    depends: ['nodejs (>= 20)'],
    recommends: ['iptables'],
    summary: 'PonIO hosting agent (websites, FTP, MySQL, firewall)',
    description: [
      'The agent of PonIO, a multi-host Linux hosting control panel: it applies the',
      "panel's requests to this host over mutually authenticated TLS (Apache",
      'websites, proftpd FTP users, MariaDB databases, iptables firewall rules).',
      'It is one JavaScript file run by Node.js >= 20 at /usr/bin/node.',
    ],
    files: [
      {
        from: path.join(dist, 'agent/ponio-agent.cjs'),
        to: 'usr/lib/ponio-agent/ponio-agent.cjs',
        mode: 0o755,
      },
      ...units.map((u) => ({
        from: path.join(dist, 'agent', u),
        to: `lib/systemd/system/${u}`,
        mode: 0o644,
        edit: (t) => t.replaceAll('/opt/ponio-agent/', '/usr/lib/ponio-agent/'),
      })),
      { text: '{}\n', to: 'etc/ponio-agent/config.json', mode: 0o600, conffile: true },
    ],
    links: [{ to: 'usr/bin/ponio-agent', target: '../lib/ponio-agent/ponio-agent.cjs' }],
    dirs: [{ path: 'etc/ponio-agent', mode: 0o700 }],
    postinst: `
if [ "$1" = configure ]; then
	mkdir -p /etc/ponio-agent /var/lib/ponio-agent
	chmod 0700 /etc/ponio-agent /var/lib/ponio-agent
	chmod 0600 /etc/ponio-agent/config.json
	if [ ! -f /etc/ponio-agent/agent.crt ]; then
		echo "ponio-agent: enroll this host with the command the panel shows (ponio-agent enroll --panel ... --token ... --ca-pin ...), then: systemctl restart ponio-agent"
	fi
fi
${s.postinst}`,
    prerm: s.prerm,
    postrm: `${s.postrm}
if [ "$1" = purge ]; then
	rm -rf /etc/ponio-agent /var/lib/ponio-agent /var/log/ponio-agent
	# The FTP module's proftpd snippet and the virtual-user file it points to.
	if grep -qs '^# Managed by PonIO' /etc/proftpd/conf.d/ponio.conf; then
		rm -f /etc/proftpd/conf.d/ponio.conf /etc/proftpd/ftpd.passwd
		if [ -d /run/systemd/system ]; then
			deb-systemd-invoke try-reload-or-restart proftpd.service >/dev/null 2>&1 || true
		fi
	fi
fi
`,
  };
}

function panelPackage(dist, arch) {
  const units = ['ponio-panel.service'];
  const s = unitSnippets(units, {
    start: `if [ -n "$2" ]; then _dh_action=restart; else _dh_action=start; fi
		deb-systemd-invoke $_dh_action 'ponio-panel.service' >/dev/null || true`,
  });
  const panel = path.join(dist, 'panel');
  const tree = readdirSync(panel).filter(
    (e) => !['install-panel.sh', 'ponio-panel.service', 'panel.example.json'].includes(e),
  );
  return {
    name: 'ponio-panel',
    arch,
    depends: ['nodejs (>= 20)', 'adduser'],
    // better-sqlite3's addon: its shared-library dependencies, as dpkg-shlibdeps computes them.
    native: ['usr/lib/ponio-panel/node_modules/better-sqlite3/build/Release/better_sqlite3.node'],
    recommends: [],
    summary: 'PonIO hosting control panel (web dashboard, REST API)',
    description: [
      'The panel of PonIO, a multi-host Linux hosting control panel: the web',
      'dashboard, the REST API and the mutual-TLS client of every host agent, with',
      'its state in SQLite. It runs as the system user ponio under Node.js >= 20',
      'at /usr/bin/node and listens on port 8443.',
    ],
    files: [
      ...tree.map((e) => ({ from: path.join(panel, e), to: `usr/lib/ponio-panel/${e}`, tree: true })),
      {
        from: path.join(panel, 'ponio-panel.service'),
        to: 'lib/systemd/system/ponio-panel.service',
        mode: 0o644,
        edit: (t) => t.replaceAll('/opt/ponio-panel', '/usr/lib/ponio-panel'),
      },
      {
        text: '{\n  "host": "0.0.0.0",\n  "port": 8443,\n  "dataDir": "/var/lib/ponio-panel"\n}\n',
        to: 'etc/ponio-panel/panel.json',
        mode: 0o640,
        conffile: true,
      },
    ],
    links: [{ to: 'usr/bin/ponio-panel', target: '../lib/ponio-panel/ponio-panel.mjs' }],
    dirs: [{ path: 'etc/ponio-panel', mode: 0o750 }],
    postinst: `
if [ "$1" = configure ]; then
	if ! getent passwd ponio >/dev/null; then
		adduser --system --group --home /var/lib/ponio-panel --no-create-home --shell /usr/sbin/nologin --gecos "PonIO panel" ponio >/dev/null
	fi
	mkdir -p /var/lib/ponio-panel
	chown ponio:ponio /var/lib/ponio-panel
	chmod 0700 /var/lib/ponio-panel
	chown root:ponio /etc/ponio-panel /etc/ponio-panel/panel.json
	chmod 0750 /etc/ponio-panel
	chmod 0640 /etc/ponio-panel/panel.json
fi
${s.postinst}`,
    prerm: s.prerm,
    postrm: `${s.postrm}
if [ "$1" = purge ]; then
	rm -rf /etc/ponio-panel /var/lib/ponio-panel
	if getent passwd ponio >/dev/null && command -v deluser >/dev/null; then
		deluser --system ponio >/dev/null 2>&1 || true
	fi
	if getent group ponio >/dev/null && command -v delgroup >/dev/null; then
		delgroup --system ponio >/dev/null 2>&1 || true
	fi
fi
`,
  };
}

/** dpkg-shlibdeps' Depends for one native file (it wants a debian/control to stand in). */
function shlibDepends(file, outDir) {
  const dir = path.join(outDir, '.shlibdeps');
  mkdirSync(path.join(dir, 'debian'), { recursive: true });
  writeFileSync(path.join(dir, 'debian/control'), 'Source: ponio\n\nPackage: ponio\nArchitecture: any\n');
  const out = execFileSync('dpkg-shlibdeps', ['-O', '-e', file], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  rmSync(dir, { recursive: true, force: true });
  const m = /^shlibs:Depends=(.*)$/m.exec(out);
  return m
    ? m[1]
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean)
    : [];
}

/**
 * The lintian warnings the packages keep, each with why (lintian prints the comment with the
 * tag when it overrides it; docs/install.md lists them too).
 */
function lintianOverrides(spec) {
  const p = spec.name;
  const conf = p === 'ponio-agent' ? 'etc/ponio-agent/config.json' : 'etc/ponio-panel/panel.json';
  const confDir = p === 'ponio-agent' ? 'etc/ponio-agent/' : 'etc/ponio-panel/';
  return [
    `# The config dir holds the host's private key and certificates (agent) or the panel's`,
    `# settings, readable by the service user only.`,
    `${p}: non-standard-dir-perm ${p === 'ponio-agent' ? '0700' : '0750'} != 0755 [${confDir}]`,
    `${p}: non-standard-file-perm ${p === 'ponio-agent' ? '0600' : '0640'} != 0644 [${conf}]`,
    `# The program documents itself (${p} --help, and every subcommand's --help); docs/install.md.`,
    `${p}: no-manual-page [usr/bin/${p}]`,
    '',
  ].join('\n');
}

/** Debian versions: 0.1.0 stays; '-' (a Debian revision) is not ours to use (native package). */
const debVersion = (v) => v.replace(/-/g, '~');

function changelog(name, version, date) {
  const text = [
    `${name} (${version}) unstable; urgency=medium`,
    '',
    `  * PonIO ${version}; see the project's release notes.`,
    '',
    ` -- ${MAINTAINER}  ${date.toUTCString().replace('GMT', '+0000')}`,
    '',
  ].join('\n');
  return gzipSync(Buffer.from(text), { level: 9 });
}

function copyright() {
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: PonIO',
    `Source: ${HOMEPAGE}`,
    '',
    'Files: *',
    'Copyright: 2025-2026 PonIO contributors',
    'License: MIT',
    ' Permission is hereby granted, free of charge, to any person obtaining a copy',
    ' of this software and associated documentation files (the "Software"), to deal',
    ' in the Software without restriction, including without limitation the rights',
    ' to use, copy, modify, merge, publish, distribute, sublicense, and/or sell',
    ' copies of the Software, and to permit persons to whom the Software is',
    ' furnished to do so, subject to the following conditions:',
    ' .',
    ' The above copyright notice and this permission notice shall be included in',
    ' all copies or substantial portions of the Software.',
    ' .',
    ' THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR',
    ' IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,',
    ' FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE',
    ' AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER',
    ' LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,',
    ' OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN',
    ' THE SOFTWARE.',
    '',
    'Comment: the packages also contain third-party JavaScript bundled by esbuild',
    ' (licenses in the *.LEGAL.txt files next to the bundles) and, in ponio-panel,',
    ' better-sqlite3, bootstrap and bootstrap-icons (MIT, their LICENSE files).',
    '',
  ].join('\n');
}

function walk(dir, fn) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    fn(p, e);
    if (e.isDirectory()) walk(p, fn);
  }
}

function makeDeb(spec, { version, outDir, dpkgDeb, date }) {
  const stage = path.join(outDir, `.stage-${spec.name}`);
  rmSync(stage, { recursive: true, force: true });
  const put = (rel) => {
    const p = path.join(stage, rel);
    mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    return p;
  };
  const conffiles = [];
  for (const f of spec.files) {
    const dest = put(f.to);
    if (f.tree) cpSync(f.from, dest, { recursive: true });
    else if (f.text !== undefined) writeFileSync(dest, f.text);
    else if (f.edit) writeFileSync(dest, f.edit(readFileSync(f.from, 'utf8')));
    else cpSync(f.from, dest);
    if (f.conffile) conffiles.push(`/${f.to}`);
  }
  for (const l of spec.links) symlinkSync(l.target, put(l.to));
  // npm's packaging files are no part of an installed program.
  walk(stage, (p, e) => {
    if (e.isFile() && e.name === '.npmignore') rmSync(p);
  });
  const depends = [...spec.depends];
  for (const rel of spec.native ?? []) {
    const p = path.join(stage, rel);
    execFileSync('strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', p]);
    chmodSync(p, 0o644);
    depends.push(...shlibDepends(p, outDir));
  }
  writeFileSync(put(`usr/share/lintian/overrides/${spec.name}`), lintianOverrides(spec));
  const doc = `usr/share/doc/${spec.name}`;
  writeFileSync(put(`${doc}/copyright`), copyright());
  writeFileSync(put(`${doc}/changelog.gz`), changelog(spec.name, version, date));
  // Permissions: directories 0755, files 0644 (0755 when executable), then the explicit ones.
  walk(stage, (p, e) => {
    if (e.isSymbolicLink()) return;
    if (e.isDirectory()) chmodSync(p, 0o755);
    else chmodSync(p, statSync(p).mode & 0o111 && !p.endsWith('.node') ? 0o755 : 0o644);
  });
  for (const f of spec.files) if (f.mode !== undefined) chmodSync(path.join(stage, f.to), f.mode);
  for (const d of spec.dirs) chmodSync(path.join(stage, d.path), d.mode);

  let kib = 0;
  const sums = [];
  walk(stage, (p, e) => {
    if (e.isFile()) {
      kib += Math.ceil(statSync(p).size / 1024);
      sums.push(`${createHash('md5').update(readFileSync(p)).digest('hex')}  ${path.relative(stage, p)}`);
    } else kib += 1;
  });
  const control = [
    `Package: ${spec.name}`,
    `Version: ${version}`,
    `Architecture: ${spec.arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${kib}`,
    ...(depends.length ? [`Depends: ${depends.join(', ')}`] : []),
    ...(spec.recommends.length ? [`Recommends: ${spec.recommends.join(', ')}`] : []),
    'Section: admin',
    'Priority: optional',
    `Homepage: ${HOMEPAGE}`,
    `Description: ${spec.summary}`,
    ...spec.description.map((l) => ` ${l}`),
    '',
  ].join('\n');
  const debian = path.join(stage, 'DEBIAN');
  mkdirSync(debian, { mode: 0o755 });
  writeFileSync(path.join(debian, 'control'), control, { mode: 0o644 });
  writeFileSync(path.join(debian, 'conffiles'), conffiles.map((c) => `${c}\n`).join(''), { mode: 0o644 });
  writeFileSync(
    path.join(debian, 'md5sums'),
    sums.sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1)).join('\n') + '\n',
    { mode: 0o644 },
  );
  for (const script of ['preinst', 'postinst', 'prerm', 'postrm']) {
    const body = spec[script];
    if (!body) continue;
    writeFileSync(path.join(debian, script), `#!/bin/sh\nset -e\n${body.trimEnd()}\n\nexit 0\n`, {
      mode: 0o755,
    });
  }
  const file = path.join(outDir, `${spec.name}_${version}_${spec.arch}.deb`);
  execFileSync(dpkgDeb, ['--root-owner-group', '-Zxz', '--build', stage, file], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  rmSync(stage, { recursive: true, force: true });
  return file;
}

/**
 * Builds the .deb files of the build in `dist` into `outDir` (default dist/deb/; the panel's
 * only when the panel was built). Returns their paths, or null (with the reason printed) without dpkg-deb.
 */
export function buildDebs({ dist, version, agentOnly, outDir: into }) {
  const dpkgDeb = findDpkgDeb();
  if (!dpkgDeb) {
    console.log('build: dpkg-deb not found (Debian package dpkg): no .deb files');
    return null;
  }
  const outDir = into ?? path.join(dist, 'deb');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const v = debVersion(version);
  // Reproducible: the date of the changelog is SOURCE_DATE_EPOCH's when set.
  const date = process.env.SOURCE_DATE_EPOCH
    ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000)
    : new Date();
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  const files = [makeDeb(agentPackage(dist), { version: v, outDir, dpkgDeb, date })];
  if (!agentOnly) files.push(makeDeb(panelPackage(dist, arch), { version: v, outDir, dpkgDeb, date }));
  return files;
}

// `node scripts/deb.mjs DIST VERSION OUTDIR [--agent-only]`: packages an existing build again
// (the booted tier's upgrade tests stamp a newer version on the same build).
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const [dist, version, outDir] = process.argv.slice(2);
  if (!dist || !version || !outDir) {
    console.error('usage: node scripts/deb.mjs DIST VERSION OUTDIR [--agent-only]');
    process.exit(2);
  }
  const files = buildDebs({ dist, version, outDir, agentOnly: process.argv.includes('--agent-only') });
  if (!files) process.exit(1);
  for (const f of files) console.log(f);
}
