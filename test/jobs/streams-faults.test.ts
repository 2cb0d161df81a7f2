/**
 * The job store's streams under server faults (real nats-server): every acknowledged batch survives
 * kill -9 of the server and the boss's follow resumes without losing or repeating a batch; a state
 * write whose ack was lost is recognised on retry; a write abandoned through its signal stops
 * retrying at once; with R3 streams the loss of the stream leader loses nothing.
 */
import t from 'tap'
import { jetstreamManager } from '@nats-io/jetstream'
import { monotonicFactory } from 'ulid'
import { emptyState, JobStreams, type OpenBatch, type SubmittedJob } from '../../jobs/streams/index.js'
import { startNats, startNatsCluster, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { logger, natsConn } from './store-helpers.js'

const newBatchId = monotonicFactory()
const spec = (n: number): SubmittedJob => ({
  function: 'echo',
  payload: { n },
  priority: 0,
  timeoutMs: 60_000,
  maxAttempts: 1,
})

async function submitMany(s: JobStreams, batches: number, perBatch: number): Promise<string[]> {
  const ids: string[] = []
  await Promise.all(
    Array.from({ length: batches }, async (_, b) => {
      const jobs = Array.from({ length: perBatch }, (_, i) => spec(b * perBatch + i))
      const plan = s.submitter.plan(jobs, newBatchId)
      await s.submitter.publish(plan, jobs, new Date().toISOString())
      ids.push(...plan.ids)
    }),
  )
  return ids
}

function follow(s: JobStreams) {
  const seen: OpenBatch[] = []
  const state = { loaded: false }
  const stop = s.boss.watchBatches(
    (b) => seen.push(b),
    () => (state.loaded = true),
  )
  return { seen, state, stop }
}

t.test(
  'every acked batch survives kill -9 of nats-server; the boss follow resumes without loss or repeats',
  async (t) => {
    const nats = await startNats()
    t.teardown(() => nats.close())
    const s = await JobStreams.open({ nc: await natsConn(t, nats.url), cluster: uniqueName('f'), logger })
    const f = follow(s)
    t.teardown(f.stop)
    await waitFor(() => f.state.loaded, { what: 'initial load' })
    const ids = await submitMany(s, 200, 10)
    await nats.server.kill()
    await nats.server.restart()
    const found = await Promise.all(ids.map((id) => s.reader.get(id)))
    t.equal(
      found.filter((j) => j?.state === 'queued').length,
      ids.length,
      'every acked job is stored after kill -9 + restart',
    )
    const more = await submitMany(s, 20, 10)
    await waitFor(() => f.seen.length >= 220, { timeoutMs: 60_000, what: 'the follow caught up after the restart' })
    await new Promise((r) => setTimeout(r, 300))
    const seqs = f.seen.map((b) => b.submitSeq)
    t.ok(
      seqs.every((q, i) => i === 0 || q > seqs[i - 1]!),
      'in order, no repeats',
    )
    t.equal(f.seen.length, 220, 'every batch delivered exactly once')
    t.same(
      new Set(f.seen.flatMap((b) => b.submit.jobs.map((_, i) => `${b.batch}-${String(i).padStart(3, '0')}`))),
      new Set([...ids, ...more]),
    )
  },
)

t.test('a state write whose ack was lost is recognised on retry, not refused as a conflict', async (t) => {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const s = await JobStreams.open({
    nc: await natsConn(t, nats.url),
    cluster: uniqueName('f'),
    logger,
    limits: { requestTimeoutMs: 200 },
  })
  const [id] = await submitMany(s, 1, 1)
  const batch = id!.slice(0, 26)
  // Freeze the server: the write reaches its socket but is acked only after it resumes, long after
  // its 200 ms timeout; the store retries meanwhile and the retry finds its own bytes stored.
  await nats.server.pause()
  const writing = s.boss.writeState(
    { ...emptyState(batch, 1, 1), jobs: { 0: { state: 'running', attempts: 1, worker: 'w' } } },
    0,
  )
  await new Promise((r) => setTimeout(r, 800))
  nats.server.resume()
  const res = await writing
  t.equal(res.ok, true, 'the write is ours, not a lost race')
  t.equal((await s.reader.get(id!))?.worker, 'w')
})

t.test(
  "a write abandoned through its signal stops retrying at once (a deposed boss's write ends with its term)",
  async (t) => {
    const nats = await startNats()
    t.teardown(() => nats.close())
    const s = await JobStreams.open({
      nc: await natsConn(t, nats.url),
      cluster: uniqueName('f'),
      logger,
      limits: { requestTimeoutMs: 300 },
    })
    const [id] = await submitMany(s, 1, 1)
    await nats.server.pause() // every attempt times out and is retried
    t.teardown(() => nats.server.resume())
    const ending = new AbortController()
    const settled = s.boss.writeState(emptyState(id!.slice(0, 26), 1, 1), 0, ending.signal).then(
      () => 'written',
      (err: { code?: string }) => err.code,
    )
    await new Promise((r) => setTimeout(r, 700))
    ending.abort('term ended')
    const abortedAt = Date.now()
    const outcome = await Promise.race([settled, new Promise((r) => setTimeout(() => r('still retrying'), 5000))])
    t.equal(
      outcome,
      'BOSUN_ERR_NOT_LEADER',
      `abandoned ${Date.now() - abortedAt} ms after the abort, not after the 20 s budget`,
    )
    nats.server.resume()
  },
)

t.test('R3 streams on a 3-server cluster: the loss of the stream leader loses nothing', async (t) => {
  const cluster = await startNatsCluster(3)
  t.teardown(() => cluster.close())
  const nc = await natsConn(t, cluster.url)
  const s = await JobStreams.open({ nc, cluster: uniqueName('r'), logger, replicas: 3 })
  const jsm = await jetstreamManager(nc)
  t.equal((await jsm.streams.info(s.names.submit)).config.num_replicas, 3, 'replicated on 3 servers')
  const ids = await submitMany(s, 50, 10)
  const leader = (await jsm.streams.info(s.names.submit)).cluster?.leader
  t.ok(leader, `stream leader is ${leader}`)
  const victim = cluster.servers[Number(String(leader).slice(1)) - 1] // servers are named n1..n3
  t.ok(victim, 'the leader is one of ours')
  await victim!.kill()
  const after = await submitMany(s, 10, 10)
  t.equal(after.length, 100, 'submits after the kill are acked')
  const found = await Promise.all([...ids, ...after].map((id) => s.reader.get(id)))
  t.equal(
    found.filter((j) => j !== null).length,
    ids.length + after.length,
    'every acked job readable from the survivors',
  )
  const newLeader = (await jsm.streams.info(s.names.submit)).cluster?.leader
  t.ok(newLeader && newLeader !== leader, `a new stream leader: ${newLeader}`)
})
