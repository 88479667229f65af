import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createFtpModule } from '../../agent/modules/ftp/index.ts';
import { exec } from '../../agent/os/exec.ts';
import { sandboxLayout, systemLayout } from '../../agent/os/layout.ts';
import type { ModuleContext } from '../../agent/modules/types.ts';

const ctx = (over: Partial<ModuleContext> = {}): ModuleContext => ({
  layout: sandboxLayout('/tmp/ponio-unit-never-created'),
  exec,
  logger: pino({ level: 'silent' }),
  broadcast: () => undefined,
  agentPort: 0,
  ...over,
});

test('invalid modules.ftp settings make the module unavailable with the reason', () => {
  const m = createFtpModule(ctx({ moduleSettings: { ftp: { ftpRoot: 'relative/dir' } } }));
  const a = m.availability();
  assert.equal(a.available, false);
  assert.match(a.reason ?? '', /modules\.ftp setting ftpRoot/);
  const unknown = createFtpModule(ctx({ moduleSettings: { ftp: { surprise: true } } })).availability();
  assert.equal(unknown.available, false);
});

test('the module handles exactly the six ftp events', () => {
  for (const layout of [sandboxLayout('/tmp/x'), systemLayout()]) {
    const m = createFtpModule(ctx({ layout }));
    assert.equal(m.name, 'ftp');
    assert.deepEqual(Object.keys(m.handlers).sort(), [
      'create ftp user',
      'delete ftp user',
      'disable ftp user',
      'enable ftp user',
      'list ftp users',
      'set ftp password',
    ]);
  }
});
