/**
 * The dashboard (README "Dashboard"): GET /ui is one static page, GET /ui/<asset> its scripts and
 * stylesheet — plain files in api/ui/assets/, no build step. The page holds no data, so these routes
 * are public; every figure it shows comes from the authenticated JSON routes, fetched by the browser.
 *
 * `tsc` compiles only .ts into dist/, so the assets are found at run time from the package root (the
 * first directory above this file holding a package.json), read once when the app is built, and
 * served from memory. Only the known names are served: anything else under /ui/ is a 404, so no path
 * from a request ever reaches the file system. Answers carry a strict content-security-policy (no
 * inline script, no third-party origin) and `cache-control: no-cache` (a new build is seen at once).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Type } from 'typebox'
import { errors } from '../../runner/errors.js'

/** The files the page is made of, and their content types. */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'panels.js': 'text/javascript; charset=utf-8',
  'timeline.js': 'text/javascript; charset=utf-8',
  'charts.js': 'text/javascript; charset=utf-8',
}

export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** api/ui/assets of the package this file belongs to (from api/routes or dist/api/routes). */
export function uiAssetsDir(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'api', 'ui', 'assets')
    if (dirname(dir) === dir) throw errors.CONFIG(`no package.json above ${from}: cannot find the dashboard assets`)
  }
}

interface Asset {
  type: string
  body: Buffer
}

function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>()
  for (const [name, type] of Object.entries(ASSETS)) out.set(name, { type, body: readFileSync(join(dir, name)) })
  return out
}

export interface UiRoutesOptions {
  /** Where the assets are. @defaultValue uiAssetsDir() */
  assetsDir?: string
}

export const uiRoutes: FastifyPluginAsyncTypebox<UiRoutesOptions> = async (app, opts) => {
  const dir = opts.assetsDir ?? uiAssetsDir()
  let assets: Map<string, Asset> | undefined
  let missing: string | undefined
  try {
    assets = loadAssets(dir)
  } catch (err) {
    // A checkout without the dashboard must still serve jobs: /ui says what is missing instead.
    missing = `the dashboard assets are missing (${(err as Error).message})`
    app.log.warn({ dir }, missing)
  }

  const send = (name: string) => {
    const asset = assets?.get(name)
    if (asset === undefined)
      throw errors.ROUTE_NOT_FOUND(missing ?? `no dashboard asset ${name.length > 64 ? `${name.slice(0, 64)}…` : name}`)
    return asset
  }
  const headers = {
    'cache-control': 'no-cache',
    'content-security-policy': UI_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  }

  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => {
    const page = send('index.html')
    return reply.headers(headers).type(page.type).send(page.body)
  })

  app.get(
    '/ui/:asset',
    { schema: { hide: true, params: Type.Object({ asset: Type.String() }) } },
    async (request, reply) => {
      // `/ui/` → the page; relative, so it works behind a proxy's path prefix too
      if (request.params.asset === '') return reply.redirect('../ui', 301)
      const asset = send(request.params.asset)
      return reply.headers(headers).type(asset.type).send(asset.body)
    },
  )
}
