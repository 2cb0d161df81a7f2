/**
 * Create a JetStream stream, or bind to it and bring it in line with this process's configuration:
 * the one way bosun's streams (the job store's, jobs/streams/open.ts, and the cluster events',
 * runner/events/stream.ts) come to exist. Concurrent first starts are safe: a stream another
 * process created meanwhile is bound to. Only the replica count, the age limit, the duplicate
 * window and the per-subject limit are brought in line, and only when `apply` (a process that owns
 * the configuration).
 */
import type { JetStreamManager, StreamConfig } from '@nats-io/jetstream'
import type { Logger } from './logger.js'

export type StreamSpec = Partial<StreamConfig> & { name: string }

/**
 * A stream add refused because a concurrent first start created it meanwhile: nats-server answers
 * "already in use" or, racing on the subjects, "subjects overlap with an existing stream" (also
 * what a stream of another name owning the subjects gets, so callers check the stream exists).
 */
export function isCreatedConcurrently(err: unknown): boolean {
  return /already in use|subjects overlap/i.test((err as Error)?.message ?? '')
}

export async function ensureStream(jsm: JetStreamManager, cfg: StreamSpec, log: Logger, apply: boolean): Promise<void> {
  let info
  try {
    info = await jsm.streams.info(cfg.name)
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err
    try {
      await jsm.streams.add(cfg)
      log.info({ stream: cfg.name, replicas: cfg.num_replicas }, 'stream created')
      return
    } catch (addErr) {
      if (!isCreatedConcurrently(addErr)) throw addErr
      info = await jsm.streams.info(cfg.name).catch(() => {
        throw addErr // another stream owns these subjects
      })
    }
  }
  const replicasDiffer = cfg.num_replicas !== undefined && info.config.num_replicas !== cfg.num_replicas
  const ageDiffers = info.config.max_age !== cfg.max_age || info.config.duplicate_window !== cfg.duplicate_window
  const perSubjectDiffers =
    cfg.max_msgs_per_subject !== undefined && info.config.max_msgs_per_subject !== cfg.max_msgs_per_subject
  if (!apply || (!replicasDiffer && !ageDiffers && !perSubjectDiffers)) return
  await jsm.streams.update(cfg.name, {
    ...info.config,
    num_replicas: cfg.num_replicas ?? info.config.num_replicas,
    max_age: cfg.max_age ?? info.config.max_age,
    duplicate_window: cfg.duplicate_window ?? info.config.duplicate_window,
    max_msgs_per_subject: cfg.max_msgs_per_subject ?? info.config.max_msgs_per_subject,
  })
  log.info(
    { stream: cfg.name, replicas: cfg.num_replicas, maxAgeMs: (cfg.max_age ?? 0) / 1e6 },
    'stream updated to this configuration',
  )
}
