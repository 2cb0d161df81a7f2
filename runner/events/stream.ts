/**
 * The cluster-events stream (runner/events/model.ts): created by the workers (with the job store's
 * replica count), bound by everyone else. File storage, kept BOSUN_EVENT_RETENTION_MS, oldest dropped
 * first, and a cap on its size so a flapping cluster cannot fill the disk with events.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream'
import { ensureStream, type StreamSpec } from '../jetstream-stream.js'
import type { Logger } from '../logger.js'
import { eventStreamName, eventSubjectPrefix } from './model.js'

/** Most bytes the stream keeps (oldest dropped first): 256 MiB is millions of events. */
const MAX_STREAM_BYTES = 256 * 1024 * 1024
const ns = (ms: number) => ms * 1_000_000

export interface EventStreamOptions {
  cluster: string
  retentionMs: number
  replicas: number
}

function config(o: EventStreamOptions): StreamSpec {
  return {
    name: eventStreamName(o.cluster),
    subjects: [`${eventSubjectPrefix(o.cluster)}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_age: ns(o.retentionMs),
    max_bytes: MAX_STREAM_BYTES,
    duplicate_window: ns(Math.min(120_000, o.retentionMs)),
    description: 'bosun: cluster events (leadership, workers, fencing, connections)',
  }
}

/** Create the stream, or bring its replicas and retention in line with this configuration. */
export async function ensureEventStream(jsm: JetStreamManager, o: EventStreamOptions, log: Logger): Promise<void> {
  await ensureStream(jsm, config(o), log, true)
}
