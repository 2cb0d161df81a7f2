/**
 * ctx.progress and kept ctx.log lines from the worker agent to the LIVE stream, on a real nats-server
 * with the real executor (threads and inline): the throttle (writes counted by the stream's own
 * sequence), nothing written for a job that does not report, earlier attempts' lines kept in front,
 * the line cap, a newer attempt's record never overwritten, bad progress values, garbage in the stream.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { jetstreamManager } from '@nats-io/jetstream'
import { startNats, uniqueName } from '../helpers/servers.js'
import { e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { logger, natsConn } from '../jobs/store-helpers.js'
import { JobStreams, jobIdOf } from '../../jobs/streams/index.js'
import { newBatchId } from '../../jobs/job-ids.js'
import { createExecutor } from '../../worker/executor/index.js'
import { WorkerAgent } from '../../worker/agent/worker-agent.js'
import { LiveRecorder } from '../../worker/agent/live-recorder.js'
import { MSG, type AttemptResult } from '../../jobs/protocol.js'
import type { MessageHandler, Transport } from '../../runner/index.js'
import { loadWorkerConfig } from '../../worker/config.js'

const nats = await startNats()
t.teardown(() => nats.close())
const nc = await natsConn(t, nats.url)
const cluster = uniqueName('live')
const store = await JobStreams.open({ nc, cluster, logger, retentionMs: 60_000 })
const jsm = await jetstreamManager(nc)
const executor = await createExecutor({ functionsDir: e2eFunctionsDir(), concurrency: 4, logger })
t.teardown(() => executor.close())

/** Captures the agent's handlers; acknowledges every result and keeps it. */
class FakeTransport extends EventEmitter {
  readonly address = 'bosun.t.proc.w1'
  readonly connected = true
  readonly handlers = new Map<string, MessageHandler>()
  readonly results: AttemptResult[] = []
  send(): boolean {
    return true
  }
  async request(_address: string, _type: string, body: { results: AttemptResult[] }): Promise<unknown> {
    this.results.push(...body.results)
    return { acked: body.results.map((r) => r.jobId) }
  }
  handle(type: string, h: MessageHandler): void {
    this.handlers.set(type, h)
  }
  call(type: string, body: unknown): unknown {
    return this.handlers.get(type)!(body, { v: 1, type, from: 'x', body })
  }
}

function agentWith(limits: { maxLines: number; maxBytes: number }) {
  const transport = new FakeTransport()
  const agent = new WorkerAgent({
    id: 'w1',
    transport: transport as unknown as Transport,
    executor,
    bossAddress: async () => 'boss',
    logger,
    live: new LiveRecorder(store.live, limits, logger),
  })
  agent.start()
  agent.setAccepting(true)
  agent.observeEpoch(1)
  t.teardown(() => agent.close())
  return transport
}

const transport = agentWith({ maxLines: 1000, maxBytes: 65_536 })

/** Run one attempt of `fn` through the agent; resolves with its reported result. */
async function attempt(
  fn: string,
  payload: unknown,
  o: { id?: string; attempt?: number; run?: number; via?: FakeTransport } = {},
): Promise<AttemptResult> {
  const via = o.via ?? transport
  const id = o.id ?? jobIdOf(newBatchId(), 0)
  const job = { id, function: fn, attempts: o.attempt ?? 1, payload, timeoutMs: 30_000, run: o.run ?? 0 }
  via.call(MSG.dispatch, { epoch: 1, jobs: [job] })
  return waitFor(
    () => via.results.find((r) => r.jobId === id && r.attempt === (o.attempt ?? 1) && (r.run ?? 0) === (o.run ?? 0)),
    {
      timeoutMs: 20_000,
      what: `result of ${id}`,
    },
  )
}

/** Messages ever written to the LIVE stream (its last sequence). */
async function writes(): Promise<number> {
  return (await jsm.streams.info(store.names.live)).state.last_seq
}

for (const fn of ['report', 'report-inline']) {
  t.test(`${fn}: 100 progress calls in 2 s cost at most 4 writes; the last value is in the result`, async (t) => {
    const before = await writes()
    const r = await attempt(fn, { calls: 100, spanMs: 2000 })
    t.ok(r.outcome.ok, JSON.stringify(r.outcome))
    const n = (await writes()) - before
    t.ok(n >= 2 && n <= 4, `${n} writes (one a second at most, and a final one)`)
    t.equal(r.progress, 100, 'the last value travels with the result')
    const stored = await store.live.read(r.jobId)
    t.equal(stored?.record?.progress, 100, 'and is the stored one')
  })

  t.test(`${fn}: a job that neither reports progress nor logs writes nothing`, async (t) => {
    const before = await writes()
    const r = await attempt(fn, {})
    t.ok(r.outcome.ok)
    t.equal(await writes(), before, 'no write')
    t.equal(await store.live.read(r.jobId), null, 'no message for the job')
    t.notOk('progress' in r, 'no progress in the result')
  })

  t.test(`${fn}: a bad progress value throws a TypeError in the function`, async (t) => {
    for (const bad of ['nan', 'infinity', 'above', 'negative', 'string', 'array', 'null', 'date', 'big', 'cycle']) {
      const r = await attempt(fn, { bad })
      t.notOk(r.outcome.ok, `${bad}: the attempt failed`)
      if (r.outcome.ok) continue
      t.equal(r.outcome.error.name, 'TypeError', `${bad}: TypeError`)
      t.equal(r.outcome.error.code, 'BOSUN_ERR_BAD_PROGRESS', `${bad}: coded`)
      t.match(r.outcome.error.message, /^ctx\.progress: /, `${bad}: ${r.outcome.error.message}`)
    }
    const caught = await attempt(fn, { bad: 'above', catchBad: true })
    t.match(caught.outcome, { ok: true, result: { caught: { name: 'TypeError', code: 'BOSUN_ERR_BAD_PROGRESS' } } })
  })
}

t.test('a later attempt keeps the earlier attempts’ lines in front of its own', async (t) => {
  const id = jobIdOf(newBatchId(), 0)
  const first = await attempt('report', { steps: [10], lines: 2, failAttempts: 1 }, { id })
  t.notOk(first.outcome.ok)
  const second = await attempt(
    'report-inline',
    { steps: [{ phase: 'b' }], lines: 1, failAttempts: 1 },
    { id, attempt: 2 },
  )
  t.same(second.progress, { phase: 'b' })
  const rec = (await store.live.read(id))?.record
  t.same(
    rec?.lines.map((l) => [l.attempt, l.level, l.msg]),
    [
      [1, 'info', 'step 10 attempt 1'],
      [1, 'warn', 'line 1 attempt 1'],
      [1, 'warn', 'line 2 attempt 1'],
      [2, 'info', 'step {"phase":"b"} attempt 2'],
      [2, 'warn', 'line 1 attempt 2'],
    ],
  )
  t.same(rec?.lines[0]?.fields, { step: 10 }, 'the call’s object is kept as fields')
  t.match(rec, { run: 0, attempt: 2, progress: { phase: 'b' }, truncated: false })
  // A retried run (run 1) starts without progress and keeps run 0's lines.
  const rerun = await attempt('report', { lines: 1 }, { id, run: 1 })
  t.notOk('progress' in rerun)
  const after = (await store.live.read(id))?.record
  t.equal(after?.progress, undefined, 'no progress until the new run reports')
  t.same(after?.lines.at(-1), { ...after?.lines.at(-1), attempt: 1, run: 1, msg: 'line 1 attempt 1' })
  t.equal(after?.lines.length, 6)
})

t.test('JOB_LOG_MAX_LINES: only the last lines are kept, truncated', async (t) => {
  const small = agentWith({ maxLines: 3, maxBytes: 65_536 })
  const id = jobIdOf(newBatchId(), 0)
  await attempt('report', { lines: 4, failAttempts: 1 }, { id, via: small })
  await attempt('report', { lines: 2 }, { id, attempt: 2, via: small })
  const rec = (await store.live.read(id))?.record
  t.same(
    rec?.lines.map((l) => l.msg),
    ['line 4 attempt 1', 'line 1 attempt 2', 'line 2 attempt 2'],
  )
  t.equal(rec?.truncated, true)
})

t.test('JOB_LOG_MAX_BYTES bounds the kept lines by their encoded size', async (t) => {
  const small = agentWith({ maxLines: 1000, maxBytes: 1024 })
  const r = await attempt('report', { lines: 50 }, { via: small })
  const rec = (await store.live.read(r.jobId))?.record
  const bytes = rec!.lines.reduce((n, l) => n + Buffer.byteLength(JSON.stringify(l)), 0)
  t.ok(bytes <= 1024, `${bytes} bytes kept`)
  t.equal(rec?.lines.at(-1)?.msg, 'line 50 attempt 1', 'the newest line is kept')
  t.equal(rec?.truncated, true)
})

t.test('an older attempt never overwrites a newer attempt’s record', async (t) => {
  const id = jobIdOf(newBatchId(), 0)
  const newer = { v: 1 as const, jobId: id, run: 0, attempt: 3, progress: 77, lines: [], truncated: false }
  const seq = await store.live.write(newer, 0)
  t.type(seq, 'number')
  const before = await writes()
  const r = await attempt('report', { steps: [5], lines: 1 }, { id, attempt: 2 })
  t.equal(r.progress, 5, 'the result still carries its own progress')
  t.equal(await writes(), before, 'the stale attempt wrote nothing')
  t.match((await store.live.read(id))?.record, { attempt: 3, progress: 77 })
  // A first attempt that meets a record of its own job (a conflict) re-reads and then stops as well.
  const id2 = jobIdOf(newBatchId(), 0)
  await store.live.write({ ...newer, jobId: id2 }, 0)
  await attempt('report', { steps: [1] }, { id: id2 })
  t.match((await store.live.read(id2))?.record, { attempt: 3, progress: 77 })
})

t.test('garbage on a job’s subject is ignored with a warning and overwritten', async (t) => {
  const id = jobIdOf(newBatchId(), 0)
  await nc.request(store.subjects.live(id), new TextEncoder().encode('{"not":"a live record"'))
  const read = await store.live.read(id)
  t.equal(read?.record, undefined, 'read back as no record')
  await attempt('report', { steps: [42], lines: 1 }, { id, attempt: 2 })
  t.match((await store.live.read(id))?.record, { attempt: 2, progress: 42, lines: [{ msg: 'step 42 attempt 2' }, {}] })
})

t.test('config: JOB_LOG_MAX_LINES and JOB_LOG_MAX_BYTES are parsed once; bad values stop the start', async (t) => {
  t.same(loadWorkerConfig({}).jobLog, { maxLines: 1000, maxBytes: 65_536 })
  t.same(loadWorkerConfig({ JOB_LOG_MAX_LINES: '20', JOB_LOG_MAX_BYTES: '4096' }).jobLog, {
    maxLines: 20,
    maxBytes: 4096,
  })
  for (const env of [
    { JOB_LOG_MAX_LINES: '0' },
    { JOB_LOG_MAX_LINES: 'many' },
    { JOB_LOG_MAX_BYTES: '100' },
    { JOB_LOG_MAX_BYTES: String(2 * 1024 * 1024) },
  ])
    t.throws(
      () => loadWorkerConfig(env),
      { code: 'BOSUN_ERR_CONFIG', message: Object.keys(env)[0] },
      JSON.stringify(env),
    )
})
