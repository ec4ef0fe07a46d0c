import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Context } from 'hono';

/**
 * GET /docs: Swagger UI over /openapi.json. Its script and stylesheet come from the
 * `swagger-ui-dist` package and are served by the gateway itself, so the page works with no
 * access to the internet (and loads nothing from a CDN).
 */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

let assetDir: string | undefined;
const cache = new Map<string, Uint8Array>();

async function asset(name: string): Promise<Uint8Array | undefined> {
  if (!(name in ASSETS)) return undefined;
  const hit = cache.get(name);
  if (hit) return hit;
  assetDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const bytes = new Uint8Array(await readFile(join(assetDir, name)));
  cache.set(name, bytes);
  return bytes;
}

export const DOCS_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Release Coordinator API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script>
      window.ui = SwaggerUIBundle({
        url: '/openapi.json',
        dom_id: '#swagger-ui',
        deepLinking: true,
        persistAuthorization: true,
        presets: [SwaggerUIBundle.presets.apis],
      });
    </script>
  </body>
</html>
`;

export function docsPage(c: Context) {
  return c.html(DOCS_PAGE);
}

export async function docsAsset(c: Context) {
  const name = c.req.param('file') ?? '';
  const bytes = await asset(name);
  if (!bytes) return c.json({ detail: 'Not found.' }, 404);
  c.header('Content-Type', ASSETS[name]!);
  c.header('Cache-Control', 'public, max-age=86400');
  return c.body(bytes as Uint8Array<ArrayBuffer>);
}
