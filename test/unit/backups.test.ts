// Pure logic of the backups module: the schedule, snapshot ids, repository settings, what a
// snapshot is of, and the panel's settings form. Real restic runs are in test/system/backups*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dueWork } from '../../agent/modules/backups/schedule.ts';
import { DEFAULT_SETTINGS, type BackupState } from '../../agent/modules/backups/state.ts';
import { describe, nextBackupAt } from '../../agent/modules/backups/service.ts';
import {
  parseBackupsSettings,
  shownLocation,
  validateRepository,
} from '../../agent/modules/backups/settings.ts';
import { sandboxLayout } from '../../agent/os/layout.ts';
import { validateSnapshotId } from '../../shared/validate/backups.ts';
import { settingsFromForm } from '../../server/http/backups.ts';
import { rpcEvents } from '../../shared/protocol/index.ts';

const H = 3_600_000;
const state = (over: Partial<BackupState> = {}): BackupState => ({
  format: 1,
  settings: DEFAULT_SETTINGS,
  anchor: '2026-01-01T00:00:00.000Z',
  lastBackup: null,
  lastScheduled: null,
  lastPrune: null,
  lastCheck: null,
  snapshots: {},
  ...over,
});
const at = (iso: string): number => Date.parse(iso);

test('the schedule: daily by default, one period after the anchor or the last scheduled run; off means never', () => {
  assert.deepEqual(dueWork(state(), at('2026-01-01T23:59:00Z')), { backup: false, check: false });
  assert.equal(dueWork(state(), at('2026-01-02T00:00:00Z')).backup, true);
  const ran = state({ lastScheduled: '2026-01-02T00:01:00.000Z' });
  assert.equal(dueWork(ran, at('2026-01-02T12:00:00Z')).backup, false);
  assert.equal(dueWork(ran, at('2026-01-03T00:01:00Z')).backup, true);
  const off = state({ settings: { ...DEFAULT_SETTINGS, scheduleEnabled: false } });
  assert.equal(dueWork(off, at('2027-01-01T00:00:00Z')).backup, false);
  assert.equal(nextBackupAt(off), null);
  const hourly = state({ settings: { ...DEFAULT_SETTINGS, everyHours: 1 } });
  assert.equal(nextBackupAt(hourly), new Date(at('2026-01-01T00:00:00Z') + H).toISOString());
  // restic check every 7 days from the anchor or the last check.
  assert.equal(dueWork(state(), at('2026-01-08T00:00:00Z')).check, true);
  const checked = state({
    lastCheck: { at: '2026-01-08T00:00:00.000Z', ok: true, message: '', trigger: 'scheduled' },
  });
  assert.equal(dueWork(checked, at('2026-01-10T00:00:00Z')).check, false);
});

test('snapshot ids: 8 to 64 hex digits, lower-cased; nothing restic would read as a name, path or option', () => {
  assert.deepEqual(validateSnapshotId('ABCDEF12'), { ok: true, value: 'abcdef12' });
  for (const bad of [
    '',
    'latest',
    'abc',
    '--help',
    '-1234567',
    '../../x',
    'abcdef12\n',
    'abcdef12 ',
    'ａｂｃｄｅｆ１２',
    'g'.repeat(8),
    'a'.repeat(65),
    42,
  ])
    assert.equal(validateSnapshotId(bad).ok, false, JSON.stringify(bad));
  const r = rpcEvents['restore backup'].request.safeParse({ snapshot: '--help' });
  assert.ok(!r.success);
  assert.match(r.error.issues[0]?.message ?? '', /8 to 64 hexadecimal digits/);
});

test('retention numbers: whole numbers in their range, each refusal says which', () => {
  const req = rpcEvents['set backup settings'].request;
  for (const bad of [
    { keepDaily: -1 },
    { keepDaily: 1.5 },
    { keepWeekly: 1001 },
    { trashDays: 0 },
    { everyHours: 169 },
    { keepMonthly: '3' },
    { other: 1 },
  ])
    assert.equal(req.safeParse(bad).success, false, JSON.stringify(bad));
  assert.ok(req.safeParse({ keepDaily: 0, trashDays: 365 }).success);
  assert.deepEqual(
    settingsFromForm((n) => ({ scheduleEnabled: 'yes', keepDaily: '3', keepWeekly: '' })[n] ?? ''),
    {
      scheduleEnabled: true,
      keepDaily: 3,
    },
  );
  assert.match(
    JSON.stringify(settingsFromForm((n) => (n === 'keepDaily' ? '1e3' : ''))),
    /keepDaily must be a whole number/,
  );
  assert.match(JSON.stringify(settingsFromForm((n) => (n === 'trashDays' ? '-2' : ''))), /trashDays/);
});

test('repository settings: local path, sftp, s3, rest; credentials and anything else refused', () => {
  const layout = sandboxLayout('/tmp/sbx');
  const d = parseBackupsSettings(undefined, layout);
  assert.equal(d.location, '/tmp/sbx/var/lib/ponio-agent/backups/repository');
  assert.equal(d.passwordFile, '/tmp/sbx/etc/ponio-agent/backups.password');
  assert.equal(d.local, true);
  for (const ok of [
    '/srv/backup/web1',
    'sftp:backup@store.example.net:/srv/restic/web1',
    's3:https://s3.example.net/bucket/web1',
    'rest:https://rest.example.net:8000/web1',
  ])
    assert.equal(validateRepository(ok), null, ok);
  for (const bad of [
    'relative/path',
    '/srv/../etc',
    'sftp:host:/x;rm',
    'rest:https://user:pw@host/x',
    's3:https://h/b?x=1',
    'file:///x',
    '/x\nrm',
    'ftp://h/x',
    'sftp:u@h:/a/../b',
  ])
    assert.notEqual(validateRepository(bad), null, bad);
  assert.throws(
    () => parseBackupsSettings({ repository: 'rest:https://u:p@h/x' }, layout),
    /modules\.backups\.repository/,
  );
  assert.throws(() => parseBackupsSettings({ password: 'x' }, layout), /unknown setting\(s\) password/);
  assert.equal(shownLocation('sftp:backup@h:/x'), 'sftp:backup@h:/x');
});

test("what a snapshot is of comes from its tags; other snapshots in the repository are not PonIO's", () => {
  const s = (tags: string[] | null) => ({ id: 'a'.repeat(64), short_id: 'aaaaaaaa', time: '', tags });
  assert.deepEqual(describe(s(['ponio', 'site=a.example'])), {
    kind: 'site',
    name: 'a.example',
    trash: false,
  });
  assert.deepEqual(describe(s(['ponio-trash', 'db=shop'])), { kind: 'database', name: 'shop', trash: true });
  assert.equal(describe(s(['site=a.example'])), null);
  assert.equal(describe(s(null)), null);
  assert.equal(describe(s(['ponio'])), null);
});
