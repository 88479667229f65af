import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MANAGED_HEADER,
  parseVhost,
  placeholderPage,
  renderVhost,
} from '../../agent/modules/websites/vhost.ts';
import { adminEmailSchema } from '../../shared/protocol/events/websites.ts';

const spec = {
  domain: 'example.com',
  aliases: ['www.example.com'],
  adminEmail: 'admin@example.com',
  docroot: '/var/www/example.com/public_html',
  logDir: '/var/www/example.com/logs',
  listen: '*:80',
};

test('a rendered vhost carries the header, the names, the docroot and per-site logs', () => {
  const text = renderVhost(spec);
  const lines = text.split('\n');
  assert.equal(lines[0], MANAGED_HEADER);
  assert.ok(lines.includes('<VirtualHost *:80>'));
  assert.ok(lines.includes('    ServerName example.com'));
  assert.ok(lines.includes('    ServerAlias www.example.com'));
  assert.ok(lines.includes('    ServerAdmin admin@example.com'));
  assert.ok(lines.includes('    DocumentRoot "/var/www/example.com/public_html"'));
  assert.ok(lines.includes('    ErrorLog "/var/www/example.com/logs/error.log"'));
  assert.ok(lines.includes('        Options -Indexes +SymLinksIfOwnerMatch'));
  assert.ok(!text.includes('PonioDeliberatelyInvalidDirective'));
  assert.ok(renderVhost({ ...spec, corrupt: true }).includes('PonioDeliberatelyInvalidDirective'));
  const noExtras = renderVhost({ ...spec, aliases: [], adminEmail: null });
  assert.ok(!noExtras.includes('ServerAlias') && !noExtras.includes('ServerAdmin'));
  assert.ok(
    renderVhost({ ...spec, listen: '*:${PONIO_HTTP_PORT}' }).includes('<VirtualHost *:${PONIO_HTTP_PORT}>'),
  );
});

test('a rendered vhost parses back as managed with the same facts', () => {
  const parsed = parseVhost(renderVhost(spec), 'example.com');
  assert.deepEqual(parsed, {
    managed: true,
    serverName: 'example.com',
    aliases: ['www.example.com'],
    docroot: '/var/www/example.com/public_html',
    adminEmail: 'admin@example.com',
  });
});

test('a managed header in a file of another name, or a damaged header, is not trusted', () => {
  assert.equal(parseVhost(renderVhost(spec), 'other.com').managed, false);
  const damaged = renderVhost(spec).replace('"aliases":', '"aliasez":');
  const p = parseVhost(damaged, 'example.com');
  assert.equal(p.managed, false);
  assert.equal(p.serverName, 'example.com', 'still described from its directives');
});

test('a hand-written vhost is described read-only', () => {
  const text = [
    '# my site',
    '<VirtualHost *:80>',
    '  ServerName Shop.Example.ORG:80',
    '  ServerAlias a.example.org b.example.org',
    '  ServerAlias c.example.org',
    '  DocumentRoot "/srv/shop"',
    '  ServerAdmin root@example.org',
    '</VirtualHost>',
    '<VirtualHost *:443>',
    '  ServerName second.example.org',
    '  ServerAlias nope.example.org',
    '</VirtualHost>',
  ].join('\n');
  assert.deepEqual(parseVhost(text, 'shop'), {
    managed: false,
    serverName: 'shop.example.org',
    aliases: ['a.example.org', 'b.example.org', 'c.example.org'],
    docroot: '/srv/shop',
    adminEmail: 'root@example.org',
  });
  assert.deepEqual(parseVhost('', null), {
    managed: false,
    serverName: null,
    aliases: [],
    docroot: null,
    adminEmail: null,
  });
});

test('nothing that could break out of a directive reaches the file', () => {
  const bad: Array<Partial<typeof spec>> = [
    { domain: 'a.com\nInclude /etc/shadow' },
    { domain: 'a".com' },
    { aliases: ['ok.com', 'x.com y'] },
    { adminEmail: 'a@b.com\n</VirtualHost>' },
    { docroot: '/var/www/a"b' },
    { docroot: '/var/www/${APACHE_LOG_DIR}' },
    { logDir: '/var/log/x y' },
    { listen: '*:80>\nInclude /x' },
    { listen: '*:${A;B}' },
  ];
  for (const b of bad) assert.throws(() => renderVhost({ ...spec, ...b }), /unsafe/, JSON.stringify(b));
});

test('the admin e-mail is a plain address', () => {
  for (const ok of ['admin@example.com', 'a.b+c@example.co.uk'])
    assert.ok(adminEmailSchema.safeParse(ok).success, ok);
  for (const bad of ['a@b.com\nX', 'a"b@c.com', 'a b@c.com', 'a@b.com>', 'nope', `${'a'.repeat(250)}@b.com`])
    assert.equal(adminEmailSchema.safeParse(bad).success, false, bad);
});

test('the placeholder page names the site and escapes what it prints', () => {
  const page = placeholderPage('xn--bcher-kva.example', 'bücher.example');
  assert.match(page, /<h1>bücher\.example<\/h1>/);
  assert.match(page, /<!-- ponio-placeholder xn--bcher-kva\.example -->/);
  assert.match(placeholderPage('a.com', '<b>&'), /<h1>&#60;b&#62;&#38;<\/h1>/);
});
