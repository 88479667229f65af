import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePool, renderPool, siteUserName, type PoolSpec } from '../../agent/modules/websites/php-pool.ts';
import { parseVhost, renderVhost } from '../../agent/modules/websites/vhost.ts';

const spec: PoolSpec = {
  domain: 'example.com',
  version: '8.2',
  user: siteUserName('example.com'),
  socketOwner: 'www-data',
  socket: '/run/php/x.sock',
  siteDir: '/var/www/example.com',
  docroot: '/var/www/example.com/public_html',
  tmpDir: '/var/www/example.com/tmp',
  settings: { memoryLimitMb: 64, displayErrors: true },
};

test('site user names: ponio- prefix, at most 29 characters, distinct for look-alike domains', () => {
  const long = `${'a'.repeat(60)}.example.com`;
  for (const d of ['example.com', long, 'xn--bcher-kva.test'])
    assert.match(siteUserName(d), /^ponio-[a-z0-9-]{1,16}-[0-9a-f]{6}$/);
  assert.ok(siteUserName(long).length <= 29);
  assert.notEqual(siteUserName(`${'a'.repeat(20)}.one.test`), siteUserName(`${'a'.repeat(20)}.two.test`));
  assert.equal(siteUserName('example.com'), siteUserName('example.com'));
});

test('a pool file names the site user, its socket, open_basedir and the settings; reads back', () => {
  const text = renderPool(spec);
  assert.match(
    text,
    /^php_admin_value\[open_basedir\] = \/var\/www\/example\.com\/public_html\/:\/var\/www\/example\.com\/tmp\/$/m,
  );
  assert.match(text, /^php_admin_value\[memory_limit\] = 64M$/m);
  assert.match(text, /^php_admin_flag\[display_errors\] = on$/m);
  assert.match(text, /^listen = \/run\/php\/x\.sock$/m);
  assert.deepEqual(parsePool(text), {
    domain: 'example.com',
    version: '8.2',
    user: spec.user,
    socket: spec.socket,
    settings: spec.settings,
  });
  assert.equal(parsePool('[www]\nuser = www-data\n'), null);
});

test('nothing hostile reaches a pool file', () => {
  assert.throws(() => renderPool({ ...spec, docroot: '/var/www/x\nphp_admin_value[open_basedir]=/' }));
  assert.throws(() => renderPool({ ...spec, user: 'root ; x' }));
  assert.throws(() => renderPool({ ...spec, settings: { memoryLimitMb: '1G' as unknown as number } }));
  assert.throws(() => renderPool({ ...spec, settings: { extra: 1 } as never }));
});

test('a vhost with PHP proxies .php to its pool; PHP off again denies .php', () => {
  const base = {
    domain: 'example.com',
    aliases: [],
    adminEmail: null,
    docroot: '/var/www/example.com/public_html',
    logDir: '/var/www/example.com/logs',
    listen: '*:80',
  };
  const on = renderVhost({
    ...base,
    php: { version: '8.2', settings: {}, socket: '/run/php/p.sock' },
    owner: spec.user,
  });
  assert.match(on, /SetHandler "proxy:unix:\/run\/php\/p\.sock\|fcgi:\/\/ponio-example-com-[0-9a-f]{6}\/"/);
  assert.equal(parseVhost(on, 'example.com').php?.socket, '/run/php/p.sock');
  const off = renderVhost({ ...base, php: null, owner: spec.user });
  assert.match(off, /<FilesMatch "\\\.php\$">\n {8}Require all denied/);
  assert.equal(parseVhost(off, 'example.com').owner, spec.user);
  assert.doesNotMatch(renderVhost(base), /php/i, 'a site that never had PHP is as before');
});
