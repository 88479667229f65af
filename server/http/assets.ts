import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Router } from 'express';

/**
 * Browser scripts are written in TypeScript (public/*.ts, type-checked with the project) and
 * served as JavaScript. A prebuilt public/<name>.js (from the build) is served by the static
 * handler first; otherwise the .ts is transpiled once, on first request, with esbuild.
 */
export function scriptAssets(publicDir: string): Router {
  const r = Router();
  const cache = new Map<string, string>();
  r.get('/:name.js', async (req, res, next) => {
    const name = req.params.name;
    if (!/^[a-z][a-z0-9-]{0,40}$/.test(name)) {
      next();
      return;
    }
    let js = cache.get(name);
    if (js === undefined) {
      const file = path.join(publicDir, `${name}.ts`);
      if (!existsSync(file)) {
        next();
        return;
      }
      const { transform } = await import('esbuild');
      const out = await transform(readFileSync(file, 'utf8'), {
        loader: 'ts',
        format: 'iife',
        target: 'es2020',
        minify: true,
        sourcefile: `${name}.ts`,
      });
      js = out.code;
      cache.set(name, js);
    }
    res.type('application/javascript').set('cache-control', 'public, max-age=300').send(js);
  });
  return r;
}
