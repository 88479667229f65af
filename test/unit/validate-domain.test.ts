import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateDomain } from '../../shared/validate/domain.ts';

test('accepts ordinary and international domain names, normalised', () => {
  for (const [input, want] of [
    ['example.com', 'example.com'],
    ['WWW.Example.COM', 'www.example.com'],
    ['a-b.example.co.uk', 'a-b.example.co.uk'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ]) {
    const r = validateDomain(input);
    assert.ok(r.ok, `${input}: ${!r.ok ? r.message : ''}`);
    assert.equal(r.value, want);
  }
});

test('refuses hostile and malformed names with a message', () => {
  const hostile = [
    '',
    'test..com',
    '.example.com',
    'example.com.',
    '-a.example.com',
    'a-.example.com',
    'localhost',
    '127.0.0.1',
    '::1',
    '[::1]',
    'a.123',
    'exa mple.com',
    'example.com\n',
    'ex\u0000ample.com',
    'a.com;rm -rf /',
    '../etc/passwd',
    'a.com/../../x',
    '$(id).com',
    '`id`.com',
    "a'b.com",
    'a"b.com',
    'a_b.com',
    'a.com\r\nX: y',
    `${'a'.repeat(64)}.com`,
    `${'a.'.repeat(130)}com`,
    'a*.com',
    'a\\b.com',
    'a%00.com',
    'a.com:80',
    'user@a.com',
    '<script>.com',
    'a\u2028.com',
  ];
  for (const input of hostile) {
    const r = validateDomain(input);
    assert.equal(r.ok, false, `should refuse ${JSON.stringify(input)}`);
    if (!r.ok)
      assert.ok(
        r.message.length > 10 && !r.message.includes('\n'),
        `readable one-line message for ${JSON.stringify(input)}`,
      );
  }
  assert.equal(validateDomain(42).ok, false);
  assert.equal(validateDomain(null).ok, false);
});

test('refuses labels that mix scripts (homographs), accepts one-script and CJK names', () => {
  for (const input of [
    'p\u0430ypal.com', // Cyrillic а among Latin letters
    'xn--pypal-4ve.com', // the same, already in punycode
    'g\u043e\u043egle.example', // Cyrillic о о
    '\u03b1pple.com', // Greek alpha
    'bank\u0578.example', // Armenian
  ]) {
    const r = validateDomain(input);
    assert.equal(r.ok, false, `should refuse ${JSON.stringify(input)}`);
    if (!r.ok) assert.match(r.message, /mixes .* and .* letters/);
  }
  for (const input of [
    '\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444', // пример.рф: Cyrillic only
    '\u4f8b\u3048.jp', // Han + Hiragana
    'shop\u30b7\u30e7\u30c3\u30d7.jp', // Latin + Katakana
    '\ud55c\uad6d\uc5b4abc.kr', // Hangul + Latin
    'caf\u00e9.example', // Latin with an accent
    'example.\u043f\u0440\u0438\u043c\u0435\u0440', // scripts differ between labels, not within one
  ]) {
    const r = validateDomain(input);
    assert.ok(r.ok, `${input}: ${!r.ok ? r.message : ''}`);
  }
});
