/**
 * A worker cut off from NATS cannot report results, and the boss requeues its jobs once it has not
 * answered for the boss's unreachable grace: the agent aborts what it runs after NATS has been down
 * for `natsLostAbortMs` (shorter than that grace), reported as handed back, so two attempts of a job
 * do not run at the same time. A link that comes back in time aborts nothing.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { DEFAULT_NATS_LOST_ABORT_MS, WorkerAgent, type Executor } from '../../worker/agent/worker-agent.js'
import { DEFAULT_BOSS_SETTINGS } from '../../worker/boss/settings.js'
import { MSG, type DispatchReply } from '../../jobs/protocol.js'
import { silentLogger, type MessageHandler, type Transport, type TransportStatus } from '../../runner/index.js'
import { waitFor } from '../helpers/wait.js'

class FakeTransport extends EventEmitter {
  readonly address = 'bosun.t.proc.w1'
  connected = true
  readonly handlers = new Map<string, MessageHandler>()
  readonly results: { jobId: string; outcome: { ok: boolean; handedBack?: boolean } }[] = []
  send(): boolean {
    return true
  }
  async request(_address: string, _type: string, body: any): Promise<unknown> {
    if (!this.connected) throw new Error('not connected')
    this.results.push(...body.results)
    return { acked: body.results.map((r: { jobId: string }) => r.jobId) }
  }
  handle(type: string, h: MessageHandler): void {
    this.handlers.set(type, h)
  }
  async close(): Promise<void> {}
  status(s: TransportStatus): void {
    this.connected = s === 'connected' || s === 'reconnected'
    this.emit('status', s)
  }
}

class FakeExecutor implements Executor {
  readonly capacity = 4
  readonly functions = ['echo']
  readonly aborted = new Map<string, string>()
  run(req: { jobId: string }) {
    let finish!: (ok: boolean) => void
    const promise = new Promise<{ ok: true; result: unknown } | { ok: false; error: { message: string } }>((res) => {
      finish = (ok) => res(ok ? { ok: true, result: req.jobId } : { ok: false, error: { message: 'aborted' } })
    })
    return {
      promise,
      abort: (reason: string) => {
        this.aborted.set(req.jobId, reason)
        finish(false)
      },
    }
  }
}

const job = (id: string) => ({
  id,
  function: 'echo',
  state: 'running',
  attempts: 1,
  maxAttempts: 1,
  payload: null,
  priority: 0,
  timeoutMs: 60_000,
  createdAt: '',
  epoch: 0,
})

function setup(natsLostAbortMs: number) {
  const transport = new FakeTransport()
  const executor = new FakeExecutor()
  const agent = new WorkerAgent({
    id: 'w1',
    transport: transport as unknown as Transport,
    executor,
    bossAddress: async () => 'bosun.t.proc.boss',
    logger: silentLogger(),
    natsLostAbortMs,
  })
  agent.start()
  agent.setAccepting(true)
  agent.observeEpoch(1)
  t.teardown(() => agent.close())
  const dispatch = (ids: string[]) =>
    transport.handlers.get(MSG.dispatch)!(
      { epoch: 1, jobs: ids.map(job) },
      { v: 1, type: MSG.dispatch, from: 'boss', body: null },
    ) as DispatchReply
  return { transport, executor, agent, dispatch }
}

t.test("the default bound is under the boss grace that requeues an unreachable worker's jobs", async (t) => {
  t.ok(
    DEFAULT_NATS_LOST_ABORT_MS < DEFAULT_BOSS_SETTINGS.unreachableGraceMs,
    `${DEFAULT_NATS_LOST_ABORT_MS} < ${DEFAULT_BOSS_SETTINGS.unreachableGraceMs}`,
  )
  t.ok(DEFAULT_NATS_LOST_ABORT_MS >= 2000, 'a short blip does not cost the running jobs')
})

t.test('NATS down longer than the bound: every running job is aborted and reported handed back', async (t) => {
  const { transport, executor, agent, dispatch } = setup(200)
  t.same(
    dispatch(['a', 'b']).answers.map((a) => a.accepted),
    [true, true],
  )
  const lostAt = Date.now()
  transport.status('disconnected')
  transport.status('reconnecting')
  await waitFor(() => executor.aborted.size === 2, { timeoutMs: 5000, what: 'both jobs aborted' })
  t.ok(Date.now() - lostAt >= 190, `not before the bound (${Date.now() - lostAt} ms)`)
  t.same([...executor.aborted.values()], ['shutdown', 'shutdown'], 'aborted through their signal')
  t.equal(agent.runningCount, 0, 'nothing runs any more')
  transport.status('reconnected')
  await waitFor(() => transport.results.length === 2, {
    timeoutMs: 5000,
    what: 'the results delivered after the reconnect',
  })
  t.same(
    transport.results.map((r) => r.outcome.handedBack),
    [true, true],
    'reported as handed back: the boss requeues them without counting a failed attempt',
  )
})

t.test('NATS back within the bound: nothing is aborted', async (t) => {
  const { transport, executor, agent, dispatch } = setup(300)
  dispatch(['a'])
  transport.status('disconnected')
  await new Promise((r) => setTimeout(r, 100))
  transport.status('reconnected')
  await new Promise((r) => setTimeout(r, 500))
  t.equal(executor.aborted.size, 0, 'the job kept running')
  t.equal(agent.runningCount, 1)
  // a later outage starts its own count
  transport.status('disconnected')
  await waitFor(() => executor.aborted.size === 1, { timeoutMs: 5000, what: 'aborted after a second, long outage' })
})

t.test('closing the transport (shutdown) does not abort through this path', async (t) => {
  const { transport, executor, dispatch } = setup(100)
  dispatch(['a'])
  transport.status('closed')
  await new Promise((r) => setTimeout(r, 300))
  t.equal(executor.aborted.size, 0)
})
