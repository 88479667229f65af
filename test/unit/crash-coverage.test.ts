// Every mutating event of the protocol catalog has a kill-point case in a crash suite
// (test/system/crash/<suite>.ts, run by test/system/crash-<suite>.test.ts through
// test/helpers/crash.ts). A new mutating event fails here, by name, until it has one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EVENT_NAMES, eventDef } from '../../shared/protocol/index.ts';
import { ROOT } from '../helpers/agent-process.ts';
import { caseTitle, type CrashSuite } from '../helpers/crash.ts';

const SUITES = path.join(ROOT, 'test/system/crash');

async function suites(): Promise<{ file: string; suite: CrashSuite }[]> {
  const out: { file: string; suite: CrashSuite }[] = [];
  for (const name of readdirSync(SUITES).sort()) {
    if (!name.endsWith('.ts')) continue;
    const mod = (await import(pathToFileURL(path.join(SUITES, name)).href)) as { default?: CrashSuite };
    assert.ok(mod.default?.cases, `test/system/crash/${name} must default-export crashSuite({...})`);
    out.push({ file: name, suite: mod.default });
  }
  return out;
}

test('every mutating event of the catalog has a kill-point case in a crash suite', async () => {
  const covered = new Set((await suites()).flatMap((s) => s.suite.cases.map((c) => c.event)));
  const mutating = EVENT_NAMES.filter((e) => eventDef(e).mutation);
  assert.ok(mutating.length >= 27, `the catalog lists ${mutating.length} mutating events`);
  const missing = mutating.filter((e) => !covered.has(e));
  assert.deepEqual(
    missing,
    [],
    `mutating events without a kill-point case: ${missing.map((e) => `"${e}"`).join(', ')}. ` +
      'Add a crashCase({ event, params, otherParams, setup }) to the suite of its module in test/system/crash/ (see test/helpers/crash.ts).',
  );
  const reads = [...covered].filter((e) => !eventDef(e).mutation);
  assert.deepEqual(reads, [], 'crash cases for events that are not mutations');
});

test('every crash suite is run by its test file and names its cases apart', async () => {
  for (const { file, suite } of await suites()) {
    const runner = path.join(ROOT, `test/system/crash-${path.basename(file, '.ts')}.test.ts`);
    let text = '';
    try {
      text = readFileSync(runner, 'utf8');
    } catch {
      assert.fail(`test/system/crash/${file} has no runner ${path.relative(ROOT, runner)}`);
    }
    assert.match(text, new RegExp(`from '\\./crash/${path.basename(file, '.ts')}\\.ts'`), runner);
    assert.match(text, /runCrashSuite\(suite\)/, runner);
    assert.equal(suite.name, path.basename(file, '.ts'), `${file}: the suite's name is its file's`);
    const titles = suite.cases.map(caseTitle);
    assert.equal(new Set(titles).size, titles.length, `${file}: two cases with one title (add a label)`);
    for (const c of suite.cases) {
      const needsParams = !eventDef(c.event).request.safeParse({}).success;
      assert.ok(
        c.otherParams !== undefined || !needsParams,
        `${file}: "${c.event}" takes parameters: give the case otherParams (a retry with them is refused)`,
      );
    }
  }
});
