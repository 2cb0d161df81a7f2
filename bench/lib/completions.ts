/**
 * Job completions as the boss publishes them: one subscription on `bosun.<cluster>.events.job.*`
 * in the benchmark process (its own NATS connection). Records, per job id, when the event arrived
 * (performance.now()) and which process published it (the envelope's `from`: the boss's address).
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { allJobEventsSubject } from '../../runner/transport/index.js'

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
    const subject = allJobEventsSubject(cluster)
    const prefix = subject.slice(0, -1)
    c.sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return
        const t = performance.now()
        const id = msg.subject.slice(prefix.length)
        if (c.done.has(id)) return
        let from = ''
        let state = ''
        try {
          const env = JSON.parse(decoder.decode(msg.data)) as { from?: unknown; body?: { state?: unknown } }
          if (typeof env.from === 'string') from = env.from
          if (typeof env.body?.state === 'string') state = env.body.state
        } catch {
          /* keep the arrival time anyway */
        }
        c.done.set(id, { t, from, state })
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
