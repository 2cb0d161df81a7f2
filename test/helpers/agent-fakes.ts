/**
 * Fakes around the worker agent's narrow interfaces (test/worker/): a transport that captures
 * handlers and requests, and an executor whose runs the test finishes by hand.
 */
import { EventEmitter } from 'node:events'
import type { Test } from 'tap'
import { WorkerAgent, type Executor } from '../../worker/agent/worker-agent.js'
import { silentLogger, type MessageHandler, type Transport } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import type { Refusal } from '../../worker/refusal-report.js'
import type { FinalWriter } from '../../worker/agent/own-final.js'

export class FakeTransport extends EventEmitter {
  readonly address = 'bosun.t.proc.w1'
  readonly connected = true
  readonly handlers = new Map<string, MessageHandler>()
  readonly requests: { address: string; type: string; body: any }[] = []
  ackResults = true
  send(): boolean {
    return true
  }
  async request(address: string, type: string, body: any): Promise<unknown> {
    this.requests.push({ address, type, body })
    if (!this.ackResults) throw new Error('boss unreachable')
    return { acked: body.results.map((r: { jobId: string }) => r.jobId) }
  }
  handle(type: string, h: MessageHandler): void {
    this.handlers.set(type, h)
  }
  async close(): Promise<void> {}
  call(type: string, body: unknown): any {
    return this.handlers.get(type)!(body, { v: 1, type, from: 'x', body })
  }
}

export class FakeExecutor implements Executor {
  readonly capacity = 2
  /** Runs go on after an abort (a function that ignores its signal). */
  ignoreAborts = false
  readonly functions = ['echo']
  readonly runs = new Map<string, { finish(ok: boolean): void; aborted?: string }>()
  /** Every run() call, in order (a Map keyed by id would hide a second run of the same job). */
  readonly calls: string[] = []
  run(req: { jobId: string }) {
    this.calls.push(req.jobId)
    let finish!: (ok: boolean) => void
    const promise = new Promise<{ ok: true; result: unknown } | { ok: false; error: { message: string } }>((res) => {
      finish = (ok) => res(ok ? { ok: true, result: req.jobId } : { ok: false, error: { message: 'aborted' } })
    })
    const entry: { finish(ok: boolean): void; aborted?: string } = { finish }
    this.runs.set(req.jobId, entry)
    return {
      promise,
      abort: (reason: string) => {
        entry.aborted = reason
        if (!this.ignoreAborts) finish(false)
      },
    }
  }
}

export const job = (id: string, fn = 'echo'): Job => ({
  id,
  function: fn,
  state: 'running',
  attempts: 1,
  maxAttempts: 1,
  payload: null,
  priority: 0,
  timeoutMs: 1000,
  createdAt: '',
  epoch: 0,
})

/** An agent on fake NATS and a fake executor of 2 slots, taking jobs at epoch ≥ 0; closed by `t`'s teardown. */
export function setup(t: Test, writeFinal?: FinalWriter, prefetch?: number) {
  const transport = new FakeTransport()
  const executor = new FakeExecutor()
  const refused: Refusal[] = []
  const agent = new WorkerAgent({
    id: 'w1',
    transport: transport as unknown as Transport,
    executor,
    bossAddress: async () => 'boss',
    logger: silentLogger(),
    onRefused: (r) => refused.push(r),
    writeFinal,
    ...(prefetch === undefined ? {} : { prefetch }),
  })
  agent.start()
  agent.setAccepting(true)
  t.teardown(() => agent.close())
  return { transport, executor, agent, refused }
}
