/**
 * Job completions as the boss announces them: one subscription on `bosun.<cluster>.events.finished`
 * in the benchmark process (its own NATS connection), one message per boss turn naming many jobs.
 * Records, per job id, when its notice arrived (performance.now()) and which process sent it (the
 * envelope's `from`: the boss's address).
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { parseFinishedBody } from '../../jobs/finished-notice.js'
import { finishedJobsSubject } from '../../runner/index.js'

export interface Completion {
  /** performance.now() when the event arrived. */
  t: number
  /** Publisher's address (the boss that finished the job). */
  from: string
  /** Final state carried by the event. */
  state: string
}

const decoder = new TextDecoder()

export class Completions {
  readonly done = new Map<string, Completion>()
  private sub: Subscription | undefined

  private constructor(private readonly nc: NatsConnection) {}

  /** Connect and subscribe; resolves once the server has the subscription. */
  static async open(natsUrl: string, cluster: string): Promise<Completions> {
    const nc = await connect({ servers: natsUrl.split(','), name: `bench-${cluster}` })
    const c = new Completions(nc)
    c.sub = nc.subscribe(finishedJobsSubject(cluster), {
      callback: (err, msg) => {
        if (err) return
        const t = performance.now()
        let env: { from?: unknown; body?: unknown }
        let jobs
        try {
          env = JSON.parse(decoder.decode(msg.data)) as typeof env
          jobs = parseFinishedBody(env.body).jobs
        } catch {
          return
        }
        const from = typeof env.from === 'string' ? env.from : ''
        for (const { id, state } of jobs) if (!c.done.has(id)) c.done.set(id, { t, from, state })
      },
    })
    await nc.flush()
    return c
  }

  /**
   * Wait until every id has completed; resolves with the latest completion time among them.
   * Rejects after timeoutMs with how many are still missing.
   */
  async waitAll(ids: readonly string[], timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs
    let remaining = ids.filter((id) => !this.done.has(id))
    while (remaining.length > 0) {
      if (performance.now() > deadline)
        throw new Error(`${remaining.length} of ${ids.length} jobs did not complete within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 20))
      remaining = remaining.filter((id) => !this.done.has(id))
    }
    let last = 0
    for (const id of ids) last = Math.max(last, this.done.get(id)!.t)
    return last
  }

  /** Completions of `ids` so far, sorted by arrival time. */
  timeline(ids: readonly string[]): (Completion & { id: string })[] {
    const out: (Completion & { id: string })[] = []
    for (const id of ids) {
      const c = this.done.get(id)
      if (c) out.push({ id, ...c })
    }
    return out.sort((a, b) => a.t - b.t)
  }

  async close(): Promise<void> {
    this.sub?.unsubscribe()
    await this.nc.close().catch(() => undefined)
  }
}
