/**
 * The launcher's readiness (scripts/lib/readiness.ts) against a small HTTP server standing in for
 * the API: ready needs /readyz, a boss and — when the formation has a worker besides the boss — a
 * worker that runs jobs. A clean-clone CI run of test/cluster/local-cluster.test.ts submitted the
 * printed echo job right after "ready" and got 404 (no worker advertises the function): the boss was
 * elected, the other worker not registered yet.
 */
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { probe } from '../../scripts/lib/readiness.js'

async function fakeApi(t: Test, cluster: () => unknown): Promise<string> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(req.url === '/readyz' ? '{"ready":true}' : JSON.stringify(cluster()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const boss = { id: 'worker-1' }
const jobWorker = { id: 'worker-2', functions: ['echo'] }

t.test('a boss alone is not ready when a worker besides it is expected', async (t) => {
  let workers: unknown[] = []
  const url = await fakeApi(t, () => ({ boss, workers }))
  t.same(await probe([url], true, undefined, true), { missing: 'a worker besides the boss in GET /cluster' })
  workers = [{ ...boss, functions: ['echo'] }] // the boss listed as a worker does not count
  t.match(await probe([url], true, undefined, true), { missing: /a worker besides the boss/ })
  workers = [jobWorker]
  t.same(await probe([url], true, undefined, true), { cluster: { boss, workers: [jobWorker] } }, 'ready')
})

t.test('without that expectation a boss is enough; without a boss nothing is ready', async (t) => {
  let view: unknown = { boss, workers: [] }
  const url = await fakeApi(t, () => view)
  t.same(await probe([url], true), { cluster: { boss, workers: [] } })
  view = { boss: null, workers: [jobWorker] }
  t.same(await probe([url], true, undefined, true), { missing: 'a boss in GET /cluster' })
  t.same(await probe([url], false, undefined, true), {}, 'no boss expected: /readyz alone')
})

t.test("a boss elected before this launch (a killed run's, until its session expires) is not ready", async (t) => {
  const launchedAt = Date.parse('2026-12-05T10:00:00.000Z')
  let view = { boss: { ...boss, since: '2026-12-05T09:59:58.000Z' }, workers: [jobWorker] }
  const url = await fakeApi(t, () => view)
  t.same(await probe([url], true, undefined, true, launchedAt), {
    missing: 'a boss elected since this launch in GET /cluster (the one listed is older)',
  })
  view = { boss: { ...boss, since: '2026-12-05T10:00:03.000Z' }, workers: [jobWorker] }
  t.same(await probe([url], true, undefined, true, launchedAt), { cluster: view }, 'a boss of this launch: ready')
  view = { boss: { ...boss, since: 'garbage' }, workers: [jobWorker] }
  t.match(await probe([url], true, undefined, true, launchedAt), { missing: /a boss elected since this launch/ })
})
