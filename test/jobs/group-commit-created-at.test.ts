/**
 * Group commit keeps each job's own creation time. A one-by-one submit is answered with the time
 * its request was taken, and its delay counts from that time. A job that waited in a group behind a
 * write in flight was stored with the group's write time instead. GET then showed a later createdAt
 * than the 202, and `runAt - createdAt` came out shorter than the delay asked for (CI saw test/e2e/jobs
 * "delayMs holds a job back" start a job less than delayMs after its stored createdAt).
 */
import t from 'tap'
import { newBatchId } from '../../jobs/job-ids.js'
import {
  assemble,
  GroupCommitter,
  type GroupCommitPorts,
  type SubmitRecord,
  type SubmittedJob,
} from '../../jobs/streams/index.js'
import { parseJobId } from '../../jobs/streams/layout.js'

function job(payload: number, runAt?: string): SubmittedJob {
  const j: SubmittedJob = { function: 'echo', payload, priority: 0, timeoutMs: 1000, maxAttempts: 1 }
  if (runAt !== undefined) j.runAt = runAt
  return j
}

/** Ports of a committer that only publishes (no idempotency keys in these cases). */
function ports(publish: GroupCommitPorts['publish']): GroupCommitPorts {
  return {
    publish,
    claim: () => Promise.reject(new Error('no keys here')),
    repoint: () => Promise.reject(new Error('no keys here')),
    get: () => Promise.resolve(null),
    abandoned: () => false,
    abandon: () => undefined,
    maxPayload: () => 1024 * 1024,
    newBatchId,
  }
}

t.test('jobs that wait in a group behind a write keep the creation time they were added with', async (t) => {
  const records = new Map<string, SubmitRecord>()
  let releaseFirst!: () => void
  const firstHeld = new Promise<void>((r) => (releaseFirst = r))
  let writes = 0
  const committer = new GroupCommitter(
    ports(async (plan, jobs, createdAt) => {
      if (writes++ === 0) await firstHeld
      for (const { batch, start, end } of plan.chunks)
        records.set(batch, { v: 1, batch, createdAt, jobs: jobs.slice(start, end) })
    }),
    1, // one write in flight: whatever comes meanwhile waits in the next group
  )
  const t0 = '2026-01-01T00:00:00.000Z'
  const first = committer.add(job(0), undefined, t0)
  await new Promise((r) => setImmediate(r)) // the first group is being written (held)
  const later = ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.500Z', '2026-01-01T00:00:02.500Z']
  const delayed = committer.add(job(1, '2026-01-01T00:00:01.800Z'), undefined, later[0]!)
  const second = committer.add(job(2), undefined, later[1]!)
  const third = committer.add(job(3), undefined, later[2]!)
  releaseFirst()
  await Promise.all([first.stored, delayed.stored, second.stored, third.stored])
  const createdAt = (id: string) => {
    const where = parseJobId(id)!
    return assemble(records.get(where.batch)!, where.index, undefined, 0).createdAt
  }
  t.equal(createdAt(first.id), t0, 'the first job: its own time')
  t.equal(parseJobId(delayed.id)!.batch, parseJobId(third.id)!.batch, 'the three later jobs went in one group')
  t.equal(createdAt(delayed.id), later[0], 'a job that waited: the time it was added, not the write time')
  t.equal(createdAt(second.id), later[1])
  t.equal(createdAt(third.id), later[2])
  const d = assemble(records.get(parseJobId(delayed.id)!.batch)!, parseJobId(delayed.id)!.index, undefined, 0)
  t.equal(Date.parse(d.runAt!) - Date.parse(d.createdAt), 800, 'its delay counts from its own creation time')
})

t.test('a lone job is written at once; jobs added while it is written go together after it', async (t) => {
  const writes: string[][] = []
  const committer = new GroupCommitter(ports(async (plan) => void writes.push(plan.ids)))
  const t0 = '2026-01-01T00:00:00.000Z'
  const lone = committer.add(job(0), undefined, t0)
  const a = committer.add(job(1), undefined, t0)
  const b = committer.add(job(2), undefined, t0)
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => queueMicrotask(r)) // no turn of the event loop
  t.same(writes, [[lone.id]], 'the first job was written within the same turn, alone')
  await Promise.all([lone.stored, a.stored, b.stored])
  t.same(writes, [[lone.id], [a.id, b.id]], 'the two added meanwhile went together in the next write')
})
