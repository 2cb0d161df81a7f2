/**
 * GET /jobs/:id?wait=<ms>, a long poll (README "HTTP API"): the read answers once the job is final
 * (woken by its finished event, then read from the store) or once the wait is over, with the job as
 * it is then; a final job answers at once. ClusterJobService on fakes (cluster-service-fakes.ts),
 * with finished events the test sends.
 */
import t from 'tap'
import type { Job } from '../../jobs/model.js'
import { clusterService } from './cluster-service-fakes.js'

/** Finished events under the test's control: `finish(id)` wakes the reads waiting for `id`. */
function controlledEvents() {
  const waiting = new Map<string, Set<() => void>>()
  const subscribed: string[] = []
  return {
    subscribed,
    waitOnce(id: string, timeoutMs: number) {
      subscribed.push(id)
      let wake!: () => void
      const promise = new Promise<void>((resolve) => (wake = resolve))
      const timer = setTimeout(wake, timeoutMs)
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
    finish(id: string) {
      for (const wake of waiting.get(id) ?? []) wake()
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
