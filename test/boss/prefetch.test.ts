/**
 * The boss's side of prefetch (worker/boss/fleet.ts): a worker that advertises WORKER_PREFETCH gets
 * jobs beyond its slots only while its attempts have been short (PREFETCH_MAX_RUN_MS) and none it
 * holds has been there longer, only once no worker has a free slot; and a new boss adopts the jobs a
 * worker holds ahead instead of dispatching them again.
 */
import t from 'tap'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'
import { Fleet, PREFETCH_MAX_RUN_MS } from '../../worker/boss/fleet.js'

const settle = () => new Promise((r) => setTimeout(r, 100))

/** Finish `id` on `w` as an attempt that ran `ms`, and deliver its result to the term. */
async function ranFor(w: FakeWorker, id: string, ms: number, term: Parameters<FakeWorker['deliver']>[0]) {
  const r = w.running.get(id)!
  r.startedAt = new Date(Date.now() - ms).toISOString()
  w.finish(id)
  await w.deliver(term)
}

t.test('short jobs: a full worker gets its prefetch ahead once an attempt has shown they are short', async (t) => {
  const w = new FakeWorker('w', 2)
  w.prefetch = 2
  const b = bench(w)
  const jobs = Array.from({ length: 8 }, () => newJob())
  for (const j of jobs) b.store.put(j)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.starts.length === 2, { what: 'the two slots filled' })
  await settle()
  t.equal(w.starts.length, 2, 'nothing ahead before the boss has seen how long its jobs run')
  // Both finish (neither stays held longer than short jobs run), in 2 ms each.
  await ranFor(w, w.starts[0]!, 2, term)
  await ranFor(w, w.starts[1]!, 2, term)
  await waitFor(() => w.starts.length === 6, { what: 'two free slots and two ahead' })
  await settle()
  t.equal(w.running.size, 4, 'two in slots, two ahead: never more than capacity + prefetch')
})

t.test('long jobs: nothing goes ahead of a free slot', async (t) => {
  const w = new FakeWorker('w', 2)
  w.prefetch = 2
  const b = bench(w)
  for (let i = 0; i < 6; i++) b.store.put(newJob())
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.starts.length === 2, { what: 'the two slots filled' })
  await ranFor(w, w.starts[0]!, PREFETCH_MAX_RUN_MS * 20, term)
  await waitFor(() => w.starts.length === 3, { what: 'the free slot filled' })
  await settle()
  t.equal(w.running.size, 2, 'only the slots: a job would wait behind long ones')
})

t.test("a rate-limited function's jobs never go ahead (their starts are counted at dispatch)", async (t) => {
  const w = new FakeWorker('w', 2)
  w.prefetch = 2
  w.limits = { echo: { rateLimit: { max: 1000, perMs: 1000 } } }
  const b = bench(w)
  for (let i = 0; i < 8; i++) b.store.put(newJob())
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.starts.length === 2, { what: 'the two slots filled' })
  await ranFor(w, w.starts[0]!, 2, term)
  await ranFor(w, w.starts[1]!, 2, term)
  await waitFor(() => w.starts.length >= 4, { what: 'the free slots filled' })
  await settle()
  t.equal(w.running.size, 2, 'only the slots')
})

t.test('a worker with a free slot is preferred to one with room ahead; prefetch is capped at 4 × the slots', (t) => {
  const fleet = new Fleet()
  const busy = new FakeWorker('busy', 2)
  busy.prefetch = 100
  const idle = new FakeWorker('idle', 2)
  idle.prefetch = 2
  fleet.setWorkers([busy.entry(), idle.entry()])
  t.equal(fleet.get('busy')!.prefetch, 8, 'an advertised prefetch above 4 × the slots is capped there')
  const now = new Date().toISOString()
  fleet.ran('busy', now, now)
  fleet.ran('idle', now, now)
  fleet.assign('busy', 'j1')
  fleet.assign('busy', 'j2')
  fleet.assign('idle', 'j3')
  t.equal(fleet.pick('echo')!.id, 'idle', 'the free slot, not a place ahead on the full worker')
  fleet.assign('idle', 'j4')
  t.equal(fleet.pick('echo')!.id, 'busy', 'all slots full: a place ahead')
  t.equal(fleet.pick('echo', Date.now(), false), undefined, 'unless the dispatcher asks for slots only')
  t.equal(
    fleet.pick('echo', Date.now() + 10 * PREFETCH_MAX_RUN_MS),
    undefined,
    'not once a job has been on the worker longer than short jobs run (a long one may have started)',
  )
  fleet.ran('busy', new Date(Date.now() - 100 * PREFETCH_MAX_RUN_MS).toISOString(), now)
  fleet.ran('busy', 'garbage', now)
  t.ok(fleet.get('busy')!.runMs! > PREFETCH_MAX_RUN_MS, 'a long attempt moves the average; a bad time is ignored')
  t.equal(fleet.pick('echo')!.id, 'idle', 'busy runs long jobs now: nothing ahead there')
  t.end()
})

t.test('a new boss adopts the jobs a worker holds ahead: none is dispatched twice', async (t) => {
  const w = new FakeWorker('w', 2)
  w.prefetch = 2
  const b = bench(w)
  for (let i = 0; i < 6; i++) b.store.put(newJob())
  const first = b.term(1)
  await first.start()
  await waitFor(() => w.starts.length === 2, { what: 'two running' })
  await ranFor(w, w.starts[0]!, 1, first)
  await waitFor(() => w.running.size === 4, { what: 'two running, two ahead' })
  first.stop()
  const second = b.term(2)
  t.teardown(() => second.stop())
  await second.start()
  await settle()
  t.equal(new Set(w.starts).size, w.starts.length, 'no job was dispatched twice')
  await waitFor(
    async () => {
      for (const id of [...w.running.keys()]) await ranFor(w, id, 1, second)
      return new Set(b.finished.map((j) => j.id)).size === 6
    },
    { what: 'all six finished' },
  )
  t.equal(new Set(w.starts).size, 6, 'each job ran once')
})

t.test('the boss sends ahead no more than the slots run in PREFETCH_MAX_RUN_MS', (t) => {
  const fleet = new Fleet()
  const w = new FakeWorker('w', 4)
  w.prefetch = 16
  fleet.setWorkers([w.entry()])
  const ranMs = (ms: number) => {
    const end = Date.now()
    fleet.ran('w', new Date(end - ms).toISOString(), new Date(end).toISOString())
  }
  ranMs(PREFETCH_MAX_RUN_MS / 2) // 4 slots × 50 ms / 25 ms: 8 ahead at most
  let n = 0
  while (fleet.pick('echo')) fleet.assign('w', `j${n++}`)
  t.equal(n, 4 + 8, 'four in slots and eight ahead, not its prefetch of 16')
  for (let i = 0; i < 40; i++) ranMs(1) // very short jobs: the whole prefetch
  while (fleet.pick('echo')) fleet.assign('w', `j${n++}`)
  t.equal(n, 4 + 16, 'its prefetch of 16')
  t.end()
})
