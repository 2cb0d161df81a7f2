/**
 * GET /jobs/:id?wait=<ms>, a long poll (README "HTTP API"): the read answers once the job is final
 * (woken by its finished event, then read from the store) or once the wait is over, with the job as
 * it is then; a final job answers at once. And POST /jobs?wait: its submission says its submitter
 * waits, and it answers with the final record the finished notice carries, without reading the
 * store. ClusterJobService on fakes (cluster-service-fakes.ts), with finished events the test sends.
 */
import t from 'tap'
import type { Job } from '../../jobs/model.js'
import { waitFor } from '../helpers/wait.js'
import { clusterService } from './cluster-service-fakes.js'

/**
 * Finished events under the test's control: `finish(id, record?)` wakes the reads waiting for `id`
 * (with the job's final record, as a notice for a job whose submitter waits carries it).
 */
function controlledEvents() {
  const waiting = new Map<string, Set<(job?: Job) => void>>()
  const subscribed: string[] = []
  return {
    subscribed,
    waitOnce(id: string, timeoutMs: number) {
      subscribed.push(id)
      let wake!: (job?: Job) => void
      const promise = new Promise<Job | undefined>((resolve) => (wake = resolve))
      const timer = setTimeout(() => wake(), timeoutMs)
      const set = waiting.get(id) ?? new Set()
      waiting.set(id, set.add(wake))
      return {
        promise,
        cancel: () => {
          clearTimeout(timer)
          set.delete(wake)
        },
      }
    },
    finish(id: string, record?: Job) {
      for (const wake of waiting.get(id) ?? []) wake(record)
    },
  }
}

async function setup() {
  const events = controlledEvents()
  const { service, store } = clusterService({ events })
  const { job } = await service.submit({ function: 'echo', payload: 'x' }, {})
  const finish = () => {
    const stored = store.jobs.get(job.id)!
    const done: Job = { ...stored, state: 'succeeded', result: 'x', finishedAt: new Date().toISOString() }
    store.jobs.set(job.id, done)
    events.finish(job.id)
  }
  return { service, events, id: job.id, finish }
}

t.test('a read with wait answers as soon as the job is final', async (t) => {
  const { service, id, finish } = await setup()
  const started = Date.now()
  setTimeout(finish, 100)
  const job = await service.get(id, 5000)
  t.equal(job?.state, 'succeeded', 'the final job, read after its event')
  t.equal(job?.result, 'x')
  t.ok(Date.now() - started < 3000, `answered ${Date.now() - started} ms after the read began, not at the wait's end`)
})

t.test('a read whose wait runs out answers with the job as it is', async (t) => {
  const { service, id } = await setup()
  const started = Date.now()
  const job = await service.get(id, 300)
  t.equal(job?.state, 'queued')
  t.ok(Date.now() - started >= 280, `waited ${Date.now() - started} ms of 300`)
})

t.test('a final job, a read without wait, and an unknown job answer at once', async (t) => {
  const { service, events, id, finish } = await setup()
  t.equal((await service.get(id))?.state, 'queued', 'no wait: as it is')
  t.same(events.subscribed, [], 'a read without wait subscribes to nothing')
  finish()
  t.equal((await service.get(id, 5000))?.state, 'succeeded')
  t.same(events.subscribed, [], 'a final job is not waited for')
  t.equal(await service.get('01J00000000000000000000009-000', 5000), null, 'unknown: null (404)')
})

async function submitWaiting() {
  const events = controlledEvents()
  const { service, store } = clusterService({ events })
  const pending = service.submit({ function: 'echo', payload: 'x' }, { waitMs: 5000 })
  await waitFor(() => events.subscribed.length === 1 && store.jobs.has(events.subscribed[0]!), {
    what: 'the submission stored and waited for',
  })
  const id = events.subscribed[0]!
  const record = (result: unknown, forId = id): Job => ({
    ...store.jobs.get(id)!,
    id: forId,
    state: 'succeeded',
    attempts: 1,
    result,
    finishedAt: new Date().toISOString(),
  })
  return { events, store, pending, id, record }
}

t.test('a submit with wait answers with the record its notice carries, without reading the store', async (t) => {
  const { events, store, pending, id, record } = await submitWaiting()
  t.equal(store.submitted.get(id)?.waited, true, 'its submission says its submitter waits')
  const reads = store.calls.get
  events.finish(id, record('from the notice'))
  const answer = await pending
  t.equal(answer.finished, true)
  t.equal(answer.job.state, 'succeeded')
  t.equal(answer.job.result, 'from the notice', 'the record the notice carried')
  t.equal(answer.job.epoch, undefined, 'in its public form')
  t.equal(store.calls.get, reads, 'no read of the store')
})

t.test("a notice without a record, or with another job's, makes the submit read the store", async (t) => {
  for (const carried of ['none', 'another job'] as const) {
    const { events, store, pending, id, record } = await submitWaiting()
    store.jobs.set(id, record('from the store'))
    const reads = store.calls.get
    events.finish(id, carried === 'none' ? undefined : record('forged', '01J00000000000000000000009-000'))
    const answer = await pending
    t.equal(answer.job.result, 'from the store', `${carried}: the stored record`)
    t.equal(store.calls.get, reads + 1, `${carried}: one read`)
  }
})

t.test('a submit without wait does not say its submitter waits', async (t) => {
  const { service, store } = clusterService({ events: controlledEvents() })
  const { job } = await service.submit({ function: 'echo', payload: 'x' }, {})
  t.equal(store.submitted.get(job.id)?.waited, undefined)
})
