/**
 * The cluster-events stream (runner/events/model.ts): created by the workers (with the job store's
 * replica count), bound by everyone else. File storage, kept BOSUN_EVENT_RETENTION_MS, oldest dropped
 * first, and a cap on its size so a flapping cluster cannot fill the disk with events.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream'
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

function config(o: EventStreamOptions): Partial<StreamConfig> & { name: string } {
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

/** Create the stream, or bring its retention in line with this configuration. */
export async function ensureEventStream(jsm: JetStreamManager, o: EventStreamOptions, log: Logger): Promise<void> {
  const cfg = config(o)
  let info
  try {
    info = await jsm.streams.info(cfg.name)
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err
    try {
      await jsm.streams.add(cfg)
      log.info({ stream: cfg.name }, 'cluster events stream created')
      return
    } catch (addErr) {
      if (!/already in use/i.test((addErr as Error).message)) throw addErr
      info = await jsm.streams.info(cfg.name)
    }
  }
  if (info.config.max_age === cfg.max_age) return
  await jsm.streams.update(cfg.name, { ...info.config, max_age: cfg.max_age!, duplicate_window: cfg.duplicate_window! })
  log.info({ stream: cfg.name, retentionMs: o.retentionMs }, 'cluster events retention updated')
}
