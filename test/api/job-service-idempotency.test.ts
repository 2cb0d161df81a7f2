/**
 * Idempotency keys through ClusterJobService on fakes: a key repeated within one batch names the
 * batch's first job (it was answered 503 "another request is storing it" while the batch itself was
 * storing it), a key held by an earlier job answers that job, and only new jobs are stored.
 */
import t from 'tap'
import { clusterService } from './cluster-service-fakes.js'

t.test('a key repeated within one batch names its first job; one job is stored', async (t) => {
  const { service, store } = clusterService()
  const jobs = await service.submitBatch([
    { function: 'echo', idempotencyKey: 'k', payload: 1 },
    { function: 'echo', payload: 2 },
    { function: 'echo', idempotencyKey: 'k', payload: 3 },
  ])
  t.equal(jobs[0]!.id, jobs[2]!.id, 'the repeat answers as the first')
  t.not(jobs[1]!.id, jobs[0]!.id)
  t.equal(store.jobs.size, 2, 'two jobs stored')
  t.equal(store.jobs.get(jobs[0]!.id)?.payload, 1, 'the first one')
})

t.test('a key held by an earlier job answers that job; the rest are stored', async (t) => {
  const { service, store } = clusterService()
  const first = await service.submit({ function: 'echo', idempotencyKey: 'held', payload: 'first' }, {})
  const jobs = await service.submitBatch([{ function: 'echo', idempotencyKey: 'held' }, { function: 'echo' }])
  t.equal(jobs[0]!.id, first.job.id)
  t.equal(jobs[0]!.payload, 'first', 'answered as the stored job')
  t.equal(store.jobs.size, 2)
})
