/**
 * Publishing cluster events without ever slowing the process down: `emit` only queues (the time is
 * taken when it happens), a background loop stores the queue in JetStream in order, retrying with
 * backoff while NATS or the stream is away — so a boss's "deposed" or a worker's "NATS lost" is
 * stored once the connection is back. The queue is bounded: past MAX_QUEUED the oldest are dropped
 * (counted, logged). `close()` gives the queue a short time to drain, then drops the rest.
 */
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../logger.js'
import { retryDelay, sleep } from '../retry.js'
import { eventSubject, type ClusterEventType, type EventData, type EventSource } from './model.js'
import { ensureEventStream } from './stream.js'

const MAX_QUEUED = 1000
const PUBLISH_TIMEOUT_MS = 5000

export interface EventPublisherOptions {
  nc: NatsConnection
  cluster: string
  source: EventSource
  retentionMs: number
  /** Replicas of the stream when this process creates it; undefined: never create it (bind only). */
  createWithReplicas?: number
  logger: Logger
}

interface Queued {
  subject: string
  body: Uint8Array
}

export class ClusterEventPublisher {
  private readonly queue: Queued[] = []
  private readonly log: Logger
  private readonly js: JetStreamClient
  /** True while a pump() runs: cleared in the same step as its last look at the queue. */
  private pumping = false
  private pumped: Promise<void> = Promise.resolve()
  private streamReady = false
  private closed = false
  private dropped = 0
  private readonly stop = new AbortController()

  constructor(private readonly o: EventPublisherOptions) {
    this.log = o.logger.child({ component: 'cluster-events' })
    this.js = jetstream(o.nc, { timeout: PUBLISH_TIMEOUT_MS })
  }

  /** Record that `type` happened now (or at `at`). Never throws, never waits. */
  emit<T extends ClusterEventType>(type: T, data: EventData[T], epoch?: number, at = new Date()): void {
    if (this.closed) return
    const event = { type, at: at.toISOString(), source: this.o.source, ...(epoch === undefined ? {} : { epoch }), data }
    this.queue.push({
      subject: eventSubject(this.o.cluster, type),
      body: new TextEncoder().encode(JSON.stringify(event)),
    })
    if (this.queue.length > MAX_QUEUED) {
      this.queue.shift()
      if (this.dropped++ % 100 === 0)
        this.log.warn({ dropped: this.dropped }, 'cluster event queue full: oldest dropped')
    }
    // Not `pumping ??= pump().finally(clear)`: an emit in the microtasks between the pump's end and
    // that clear would join a pump that no longer looks at the queue, and wait for the next emit.
    if (!this.pumping) this.pumped = this.pump()
  }

  /** Wait up to `timeoutMs` for queued events to be stored, then stop. Idempotent. */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.pumping) await Promise.race([this.pumped, sleep(timeoutMs)])
    this.stop.abort()
    if (this.queue.length > 0) this.log.debug({ left: this.queue.length }, 'cluster events not stored at close')
    this.queue.length = 0
  }

  /** Store the queue in order; `pumping` is cleared in the same step as the last look at the queue. */
  private async pump(): Promise<void> {
    this.pumping = true
    try {
      for (let failures = 0; this.queue.length > 0 && !this.stop.signal.aborted;) {
        const next = this.queue[0]!
        try {
          if (!this.streamReady) await this.ensureStream()
          await this.js.publish(next.subject, next.body, { timeout: PUBLISH_TIMEOUT_MS })
          if (this.queue[0] === next) this.queue.shift()
          failures = 0
        } catch (err) {
          if (/no stream|stream not found|no responders/i.test((err as Error).message)) this.streamReady = false
          const delay = retryDelay(failures++, 5000)
          if (failures === 1 || failures % 10 === 0)
            this.log.debug({ err, retryInMs: delay, queued: this.queue.length }, 'storing a cluster event failed')
          if (this.closed) return
          await sleep(delay)
        }
      }
    } finally {
      this.pumping = false
    }
  }

  private async ensureStream(): Promise<void> {
    const replicas = this.o.createWithReplicas
    if (replicas !== undefined) {
      const jsm = await jetstreamManager(this.o.nc, { timeout: PUBLISH_TIMEOUT_MS })
      await ensureEventStream(jsm, { cluster: this.o.cluster, retentionMs: this.o.retentionMs, replicas }, this.log)
    }
    this.streamReady = true
  }
}
