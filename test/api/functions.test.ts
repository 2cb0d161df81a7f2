/**
 * The function routes (README "Limits") on the API alone, the cluster faked behind the service's
 * ports: what workers declare (the strictest where they disagree), an override over it, 400s that
 * name the field and store nothing, {} removing an override, 404 for an unknown function.
 */
import t from 'tap'
import { makeApp, errorShape } from './helpers.js'
import { FunctionService } from '../../api/function-service.js'
import type { ServiceEntry } from '../../runner/index.js'
import type { LimitsOverride } from '../../jobs/limits.js'
import type { StoredOverride } from '../../jobs/limits-store.js'

function worker(id: string, functions: string[], capacity: number, limits?: unknown): ServiceEntry {
  return {
    id,
    address: `w.${id}`,
    host: 'h',
    pid: 1,
    meta: { role: 'worker', functions, capacity, ...(limits === undefined ? {} : { limits }) },
    registeredAt: new Date().toISOString(),
  }
}

async function setup(t: { teardown(fn: () => unknown): void }, running?: Record<string, number>) {
  const overrides = new Map<string, StoredOverride>()
  const workers = [
    worker('w1', ['mail', 'echo'], 4, { mail: { concurrency: 5, keyRateLimit: { max: 10, perMs: 1000 } } }),
    worker('w2', ['mail'], 2, { mail: { concurrency: 3 } }),
    worker('w3', ['echo'], 8, { echo: { concurrency: 'lots' } }), // garbage: ignored
  ]
  const functions = new FunctionService({
    workers: async () => workers,
    running: () => running,
    getOverride: async (fn) => overrides.get(fn),
    listOverrides: async () => new Map(overrides),
    putOverride: async (fn, o: LimitsOverride) => {
      if (Object.keys(o).length === 0) {
        overrides.delete(fn)
        return undefined
      }
      const stored = { override: o, updatedAt: new Date().toISOString() }
      overrides.set(fn, stored)
      return stored
    },
  })
  const app = await makeApp(t, { functions })
  return { ...app, overrides }
}

t.test('GET /functions: workers, slots, the strictest declaration, no override, running from the boss', async (t) => {
  const { inject } = await setup(t, { mail: 2 })
  const res = await inject({ method: 'GET', url: '/functions' })
  t.equal(res.statusCode, 200)
  const { functions } = res.json()
  t.same(
    functions.map((f: { name: string }) => f.name),
    ['echo', 'mail'],
  )
  const mail = functions[1]
  t.same(mail, {
    name: 'mail',
    workers: 2,
    capacity: 6,
    running: 2,
    declared: { concurrency: 3, keyRateLimit: { max: 10, perMs: 1000 } },
    override: null,
    overrideUpdatedAt: null,
    limits: { concurrency: 3, keyRateLimit: { max: 10, perMs: 1000 } },
  })
  t.same(functions[0].declared, {}, "echo: w3's garbage declaration is ignored")
  t.equal(functions[0].running, 0)
})

t.test('PUT /functions/:name/limits: an override over the declaration; null lifts; {} removes', async (t) => {
  const { inject, overrides } = await setup(t)
  let res = await inject({
    method: 'PUT',
    url: '/functions/mail/limits',
    payload: { concurrency: 10, keyRateLimit: null, keyConcurrency: 1 },
  })
  t.equal(res.statusCode, 200)
  t.same(res.json().limits, { concurrency: 10, keyConcurrency: 1 })
  t.same(res.json().override, { concurrency: 10, keyRateLimit: null, keyConcurrency: 1 })
  t.equal(res.json().running, null, 'no fresh boss report: running is null')
  res = await inject({ method: 'GET', url: '/functions/mail' })
  t.same(res.json().limits, { concurrency: 10, keyConcurrency: 1 }, 'read back')
  res = await inject({ method: 'PUT', url: '/functions/mail/limits', payload: {} })
  t.equal(res.statusCode, 200)
  t.equal(res.json().override, null)
  t.same(res.json().limits, res.json().declared, 'back to the declaration')
  t.equal(overrides.size, 0)
  res = await inject({ method: 'PUT', url: '/functions/later/limits', payload: { concurrency: 2 } })
  t.equal(res.statusCode, 200, 'a function no worker advertises yet may get an override')
  t.equal(res.json().workers, 0)
})

t.test('bad limits are a 400 naming the field, and change nothing', async (t) => {
  const { inject, overrides } = await setup(t)
  const bad: Array<[unknown, string]> = [
    [{ concurrency: 0 }, 'concurrency'],
    [{ concurrency: 1.5 }, 'concurrency'],
    [{ rateLimit: { max: 5 } }, 'rateLimit'],
    [{ rateLimit: { max: 5, perMs: 1 } }, 'rateLimit'],
    [{ keyRateLimit: { max: 0, perMs: 1000 } }, 'keyRateLimit'],
    [{ concurency: 3 }, 'concurency'],
  ]
  for (const [payload, field] of bad) {
    const res = await inject({ method: 'PUT', url: '/functions/mail/limits', payload: payload as object })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    const e = errorShape(res)
    t.equal(e.code, 'BOSUN_ERR_VALIDATION')
    t.match(JSON.stringify(e), field, `names ${field}`)
  }
  const res = await inject({ method: 'PUT', url: '/functions/Not_A_Name/limits', payload: { concurrency: 1 } })
  t.equal(res.statusCode, 400, 'a bad function name')
  t.equal(overrides.size, 0, 'nothing stored')
})

t.test('GET /functions/:name of a function nobody advertises or overrides is a 404', async (t) => {
  const { inject } = await setup(t)
  const res = await inject({ method: 'GET', url: '/functions/nope' })
  t.equal(res.statusCode, 404)
  t.equal(errorShape(res).code, 'BOSUN_ERR_UNKNOWN_FUNCTION')
})

t.test('the function routes are in the OpenAPI document', async (t) => {
  const { inject } = await setup(t)
  const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, object> }>()
  t.ok(doc.paths['/functions'], 'GET /functions')
  t.ok(doc.paths['/functions/{name}'], 'GET /functions/{name}')
  t.ok(doc.paths['/functions/{name}/limits'], 'PUT /functions/{name}/limits')
})
