/**
 * Flow limits end to end (README "Limits"): real ZooKeeper, nats-server, workers and the API; the
 * functions record when each job starts and ends. A module's declared concurrency and per-key
 * concurrency hold across a kill -9 of the boss (max overlap measured from the records), keys take
 * turns, an override through the API applies at once and shows in GET /functions, and a rate limit
 * spaces starts over its window — also across a kill -9 of the boss that filled it.
 */
import t from 'tap'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'limits-functions')
const functionsDir = mkdtempSync(join(tmpdir(), 'bosun-limit-fns-'))
for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(functionsDir, f))

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('limits'),
  workers: 4,
  concurrency: 8,
  functionsDir,
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

interface Span {
  id: string
  key: string
  start: number
  end: number
}

/** Each job's start and end from a function's records (a job recorded twice would be a re-run). */
function spans(file: string): Span[] {
  const byId = new Map<string, Span>()
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
  for (const line of lines) {
    const [what, id, key, ms] = line.split(' ') as [string, string, string, string]
    const s = byId.get(id) ?? { id, key, start: NaN, end: NaN }
    if (what === 'start') {
      if (!Number.isNaN(s.start)) throw new Error(`job ${id} started twice`)
      s.start = Number(ms)
    } else s.end = Number(ms)
    byId.set(id, s)
  }
  return [...byId.values()]
}

/** The most spans running at one moment (an end at the same ms as a start counts first). */
function maxOverlap(all: Span[]): number {
  const events = all.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ])
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!)
  let now = 0
  let most = 0
  for (const [, d] of events) most = Math.max(most, (now += d!))
  return most
}

async function submit(fn: string, items: Array<{ key?: string }>, file: string, ms: number): Promise<string[]> {
  const r = await cluster.post('/jobs/batch', {
    jobs: items.map((it) => ({
      function: fn,
      payload: { file, ms, ...(it.key ? { key: it.key } : {}) },
      ...(it.key ? { concurrencyKey: it.key } : {}),
    })),
  })
  if (r.status !== 202) throw new Error(`batch: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.jobs.map((j: { id: string }) => j.id)
}

async function putLimits(fn: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${cluster.apiUrl}/functions/${fn}/limits`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: await res.json() }
}

const recordFile = () => join(tmpdir(), `${uniqueName('spans')}.txt`)

t.test('declared concurrency and per-key concurrency hold across a kill -9 of the boss; keys take turns', async (t) => {
  const file = recordFile()
  const items = [
    ...Array.from({ length: 24 }, () => ({ key: 'big' })),
    ...['s1', 's2', 's3'].flatMap((key) => Array.from({ length: 4 }, () => ({ key }))),
  ]
  const ids = await submit('capped', items, file, 250)
  await waitFor(() => spans(file).filter((s) => s.end > 0).length >= 6, { timeoutMs: 20_000, what: '6 jobs done' })
  const boss = await cluster.bossProcess()
  await boss.kill()
  for (const id of ids) t.equal((await cluster.waitJob(id, 60_000)).state, 'succeeded')
  const all = spans(file)
  t.equal(all.length, ids.length, 'each job ran once')
  t.equal(maxOverlap(all), 3, 'at most 3 at once (and the limit was used)')
  for (const key of ['big', 's1', 's2', 's3'])
    t.equal(maxOverlap(all.filter((s) => s.key === key)), 1, `key ${key}: one at a time`)
  const bigStarts = all
    .filter((s) => s.key === 'big')
    .map((s) => s.start)
    .sort((a, b) => a - b)
  const smallEnd = Math.max(...all.filter((s) => s.key !== 'big').map((s) => s.end))
  t.ok(smallEnd < bigStarts[8]!, "the small tenants' 12 jobs were done before the big one's 9th started")
})

t.test('an override through the API applies at once and shows in GET /functions', async (t) => {
  const put = await putLimits('capped', { concurrency: 1, keyConcurrency: null })
  t.equal(put.status, 200)
  t.same(put.body.limits, { concurrency: 1 })
  t.same(put.body.declared, { concurrency: 3, keyConcurrency: 1 })
  const list = await cluster.get('/functions')
  const capped = list.body.functions.find((f: { name: string }) => f.name === 'capped')
  t.match(capped, { workers: Number, capacity: Number, limits: { concurrency: 1 } })
  t.ok(capped.workers >= 2, `advertised by the workers that are not the boss (${capped.workers})`)
  const file = recordFile()
  const ids = await submit(
    'capped',
    Array.from({ length: 8 }, () => ({})),
    file,
    100,
  )
  for (const id of ids) t.equal((await cluster.waitJob(id)).state, 'succeeded')
  t.equal(maxOverlap(spans(file)), 1, 'one at a time under the override')
  const reset = await putLimits('capped', {})
  t.same(reset.body.limits, { concurrency: 3, keyConcurrency: 1 }, '{} restores the declaration')
})

t.test('a rate limit set through the API spaces starts over its window', async (t) => {
  // Warm the function threads first: a module's first import delays a start by tens of ms.
  const warm = await submit(
    'paced',
    Array.from({ length: 32 }, () => ({})),
    recordFile(),
    1,
  )
  for (const id of warm) await cluster.waitJob(id)
  t.equal((await putLimits('paced', { rateLimit: { max: 3, perMs: 2000 } })).status, 200)
  const file = recordFile()
  const ids = await submit(
    'paced',
    Array.from({ length: 9 }, () => ({})),
    file,
    10,
  )
  for (const id of ids) t.equal((await cluster.waitJob(id)).state, 'succeeded')
  // Measured where users see it, by the function: the boss spaces its dispatches by the window
  // exactly (test/boss/limits.test.ts); the way from dispatch to the function's first line varies by
  // some ms, allowed for here (without the limit the starts are ms apart).
  const starts = spans(file)
    .map((s) => s.start)
    .sort((a, b) => a - b)
  t.equal(starts.length, 9, 'each ran once')
  for (let i = 3; i < starts.length; i++)
    t.ok(
      starts[i]! - starts[i - 3]! >= 1700,
      `start ${i + 1} is a window after start ${i - 2} (${starts[i]! - starts[i - 3]!} ms; window 2000)`,
    )
  await putLimits('paced', {})
})

t.test('a rate limit holds across a kill -9 of the boss: the dead boss’s starts count in the window', async (t) => {
  t.equal((await putLimits('paced', { rateLimit: { max: 3, perMs: 4000 } })).status, 200)
  const file = recordFile()
  const ids = await submit(
    'paced',
    Array.from({ length: 9 }, () => ({})),
    file,
    10,
  )
  await waitFor(() => spans(file).length >= 3, { timeoutMs: 20_000, what: 'the first window’s 3 starts' })
  // Killed inside the window it filled: failover takes ~2 s, well under the window's 4 s.
  const boss = await cluster.bossProcess()
  await boss.kill()
  for (const id of ids) t.equal((await cluster.waitJob(id, 60_000)).state, 'succeeded')
  const starts = spans(file)
    .map((s) => s.start)
    .sort((a, b) => a - b)
  t.equal(starts.length, 9, 'each ran once')
  for (let i = 3; i < starts.length; i++)
    t.ok(
      starts[i]! - starts[i - 3]! >= 3700,
      `start ${i + 1} is a window after start ${i - 2} (${starts[i]! - starts[i - 3]!} ms; window 4000)`,
    )
  await putLimits('paced', {})
})
