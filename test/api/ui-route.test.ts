/**
 * The dashboard routes on a fake cluster: GET /ui is the page with a strict content-security-policy,
 * its assets come with their content types, only the known asset names are served (an unknown name
 * or a path-traversal attempt is a 404), the page needs no token while the data routes do, and none
 * of it is in the OpenAPI document.
 */
import t from 'tap'
import Fastify from 'fastify'
import { readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { errorShape, makeApp } from './helpers.js'
import { uiAssetsDir, uiRoutes } from '../../api/routes/ui.js'

t.test('GET /ui: the page, with a strict CSP and no-cache', async (t) => {
  const { inject } = await makeApp(t)
  const res = await inject({ method: 'GET', url: '/ui' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
  t.equal(res.headers['cache-control'], 'no-cache')
  const csp = String(res.headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.match(csp, /script-src 'self'(;|$)/, 'scripts only from the API itself')
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/, 'no inline script, no eval, no wildcard')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.body, readFileSync(join(uiAssetsDir(), 'index.html'), 'utf8'))
  t.match(res.body, /<script type="module" src="ui\/app\.js"><\/script>/)
  t.notMatch(res.body, /<script>|<script [^>]*>[^<]/, 'no inline script in the page')
})

t.test('the assets: known names with their content types, anything else a 404', async (t) => {
  const { inject } = await makeApp(t)
  const types: Record<string, RegExp> = {
    'app.js': /^text\/javascript/,
    'timeline.js': /^text\/javascript/,
    'style.css': /^text\/css/,
  }
  for (const [name, type] of Object.entries(types)) {
    const res = await inject({ method: 'GET', url: `/ui/${name}` })
    t.equal(res.statusCode, 200, name)
    t.match(res.headers['content-type'], type, name)
    t.equal(res.headers['cache-control'], 'no-cache', name)
    t.ok(res.headers['content-security-policy'], `${name} has the CSP`)
  }
  for (const name of readdirSync(uiAssetsDir()).filter((f) => f !== 'index.html')) {
    const res = await inject({ method: 'GET', url: `/ui/${name}` })
    t.equal(res.statusCode, 200, `every file of the assets folder is served: ${name}`)
  }
  const bad = [
    '/ui/nope.js',
    '/ui/package.json',
    '/ui/..%2f..%2fpackage.json',
    '/ui/..%2F..%2F..%2Fapi%2Froutes%2Fui.ts',
    '/ui/../package.json',
    '/ui/%2e%2e/%2e%2e/package.json',
    '/ui/assets/app.js',
    '/ui/__proto__',
    '/ui/constructor',
    '/ui/app.js%00.css',
  ]
  for (const url of bad) {
    const res = await inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(errorShape(res).code, 'BOSUN_ERR_ROUTE_NOT_FOUND', url)
    t.notMatch(res.body, /"name":\s*"bosun"|import /, `${url} leaks no file`)
  }
  const slash = await inject({ method: 'GET', url: '/ui/' })
  t.equal(slash.statusCode, 301, '/ui/ redirects to the page')
  t.equal(slash.headers.location, '../ui')
})

t.test('with tokens set, the page is public and the data routes are not', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: ['s3cret'] })
  t.equal((await inject({ method: 'GET', url: '/ui' })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: '/ui/app.js' })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: '/cluster' })).statusCode, 401)
})

t.test('the dashboard routes are not in the OpenAPI document', async (t) => {
  const { inject } = await makeApp(t)
  const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>()
  t.ok(Object.keys(doc.paths).length > 5, 'the document lists the API')
  t.same(
    Object.keys(doc.paths).filter((p) => p.startsWith('/ui')),
    [],
  )
})

t.test('the assets are found from dist/ too; without them /ui is a 404 saying so', async (t) => {
  t.equal(uiAssetsDir(join(uiAssetsDir(), '..', '..', '..', 'dist', 'api', 'routes')), uiAssetsDir())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(uiRoutes, { assetsDir: join(tmpdir(), 'bosun-no-such-dir') })
  const res = await app.inject({ method: 'GET', url: '/ui' })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { message: /dashboard assets are missing/ })
})
