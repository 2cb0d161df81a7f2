/**
 * Creating (first start) or binding to the cluster's job streams (layout.ts), and keeping them in
 * step with the workers' configuration: DONE, INDEX, IDEM, ATTEMPTS and LIVE expire messages after JOB_RETENTION_MS,
 * SUBMIT and STATE never expire anything (they hold unfinished work), every stream has
 * JOB_STORE_REPLICAS replicas. Concurrent first starts are safe: a stream that exists is bound to.
 * The API only binds (creating with defaults when it starts first); a worker also updates an
 * existing stream whose age limit, replica count or per-subject limit differs from its configuration
 * (DONE had one message per subject before final records were grouped).
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream'
import type { Logger } from '../../runner/logger.js'
import { untilStoreAnswers } from '../store-codec.js'
import { ensureStream, type StreamSpec } from '../../runner/jetstream-stream.js'
import { MAX_HISTORY_ENTRIES } from '../attempts.js'
import { streamNames, type StreamNames } from './layout.js'

export interface OpenOptions {
  cluster: string
  /** JetStream replicas of every stream (1, 3 or 5). */
  replicas: number
  /** How long finished jobs (and idempotency keys) are kept. */
  retentionMs: number
  /** Make existing streams follow `replicas` and `retentionMs` (workers do; the API only binds). */
  apply: boolean
  operationTimeoutMs: number
}

export interface OpenedStreams extends StreamNames {
  idem: string
}

/** Longest deduplication window (retried submits within it are stored once). */
const DUPLICATE_WINDOW_MS = 120_000
const ns = (ms: number) => ms * 1_000_000

function configs(o: OpenOptions): StreamSpec[] {
  const names = streamNames(o.cluster)
  const base = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    allow_direct: false,
    allow_rollup_hdrs: false,
    deny_delete: false,
    deny_purge: false,
  }
  const keep = { max_age: 0, duplicate_window: ns(DUPLICATE_WINDOW_MS) }
  const expire = { max_age: ns(o.retentionMs), duplicate_window: ns(Math.min(DUPLICATE_WINDOW_MS, o.retentionMs)) }
  const p = `bosun.${o.cluster}`
  return [
    {
      ...base,
      ...keep,
      name: names.submit,
      subjects: [`${p}.sub.>`],
      max_msgs_per_subject: 1,
      description: 'bosun: submitted batches with unfinished jobs',
    },
    {
      ...base,
      ...keep,
      name: names.state,
      subjects: [`${p}.state.>`],
      max_msgs_per_subject: 1,
      description: "bosun: the boss's record of open batches",
    },
    {
      ...base,
      ...expire,
      name: names.done,
      subjects: [`${p}.done.>`],
      // A batch's groups of final records share a subject (final-groups.ts): no per-subject limit.
      max_msgs_per_subject: -1,
      description: 'bosun: finished jobs',
    },
    {
      ...base,
      ...expire,
      name: names.index,
      subjects: [`${p}.idx.>`],
      description: 'bosun: finished job ids by state and function',
    },
    {
      ...base,
      ...expire,
      name: names.attempts,
      subjects: [`${p}.att.>`],
      max_msgs_per_subject: MAX_HISTORY_ENTRIES,
      description: 'bosun: history entries of attempts that did not end their job',
    },
    {
      ...base,
      ...expire,
      name: names.live,
      subjects: [`${p}.live.>`],
      max_msgs_per_subject: 1,
      description: "bosun: jobs' progress and kept log lines",
    },
    {
      ...base,
      ...expire,
      name: `bosun_${o.cluster}_idem`,
      subjects: [`${p}.idem.>`],
      max_msgs_per_subject: 1,
      description: 'bosun: idempotency keys',
    },
  ]
}

/**
 * Create or bind every stream; resolves with their names. Rejects with BOSUN_ERR_STORE when JetStream stays
 * unavailable.
 */
export async function openStreams(jsm: JetStreamManager, o: OpenOptions, log: Logger): Promise<OpenedStreams> {
  const deadline = Date.now() + o.operationTimeoutMs
  for (const cfg of configs(o))
    await untilStoreAnswers(() => ensureStream(jsm, cfg, log, o.apply), deadline, `cannot open stream ${cfg.name}`)
  return { ...streamNames(o.cluster), idem: `bosun_${o.cluster}_idem` }
}
