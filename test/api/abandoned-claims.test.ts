/**
 * A request that claimed idempotency keys but gave up before storing its jobs (its store link
 * stalled: the claim landed, its answer never came) must not hold those keys for a minute: the
 * client's retry with the same keys is answered as soon as the store answers again, because this
 * API knows the ids it abandoned will never be stored. Another process still waits the minute out
 * (jobs/streams/claims.ts). ClusterJobService on fakes (test/api/cluster-service-fakes.ts).
 */
import t from 'tap'
import { errors, isBosunError } from '../../runner/errors.js'
import { clusterService } from './cluster-service-fakes.js'

const batch = [
  { function: 'echo', idempotencyKey: 'a' },
  { function: 'echo', idempotencyKey: 'b' },
]

t.test('batch: claims that landed without an answer; the retry is stored at once under new ids', async (t) => {
  const { service, store } = clusterService()
  store.silent.add('claim')
  const first = await service.submitBatch(batch).catch((err: unknown) => err)
  t.ok(isBosunError(first, errors.STORE), 'the first request: a store timeout (503)')
  t.equal(store.claims.size, 2, 'its claims landed')
  const abandonedIds = [...store.claims.values()].map((c) => c.jobId)
  store.silent.clear()
  const jobs = await service.submitBatch(batch)
  t.equal(jobs.length, 2)
  t.same(
    jobs.map((j) => store.jobs.has(j.id)),
    [true, true],
    'both stored',
  )
  t.notOk(
    jobs.some((j) => abandonedIds.includes(j.id)),
    'under new ids',
  )
  t.same([...store.claims.values()].map((c) => c.jobId).sort(), jobs.map((j) => j.id).sort(), 'the keys now name them')
  const again = await service.submitBatch(batch)
  t.same(
    again.map((j) => j.id),
    jobs.map((j) => j.id),
    'a third request with the keys gets the same jobs',
  )
})

t.test('one by one: a claim that landed without an answer; the retry is stored at once', async (t) => {
  const { service, store } = clusterService()
  store.silent.add('claim')
  const first = await service.submit({ function: 'echo', idempotencyKey: 'k' }, {}).catch((err: unknown) => err)
  t.ok(isBosunError(first, errors.STORE), 'the first request: a store timeout (503)')
  store.silent.clear()
  const { job } = await service.submit({ function: 'echo', idempotencyKey: 'k' }, {})
  t.ok(store.jobs.has(job.id), 'stored')
  t.equal(store.claims.get('k')?.jobId, job.id, 'the key names it')
})

t.test('a claim whose job is still being stored is not taken over: the retry is told to wait', async (t) => {
  const { service, store } = clusterService()
  store.hang.add('publish') // the claim is answered; the publish of the job stalls
  const first = await service.submitBatch([batch[0]!]).catch((err: unknown) => err)
  t.ok(isBosunError(first, errors.STORE), 'the first request: a store timeout')
  store.hang.clear()
  const retry = await service.submitBatch([batch[0]!]).catch((err: unknown) => err)
  t.ok(isBosunError(retry, errors.UNAVAILABLE), 'retry shortly: the first publish may still land')
  t.equal(store.jobs.size, 0, 'nothing stored twice')
})
