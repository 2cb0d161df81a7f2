/**
 * Creating (first start) or binding to the cluster's job streams (layout.ts), and keeping their
 * retention in step with JOB_RETENTION_MS: DONE, INDEX and IDEM expire their messages after it,
 * SUBMIT and STATE never expire anything (they hold unfinished work). Concurrent first starts are
 * safe: a stream that exists is bound to, and updated only when its age limit differs.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { isTransient } from '../store-codec.js'
import { sleep } from './io.js'
import { streamNames, type StreamNames } from './layout.js'

export interface OpenOptions {
  cluster: string
  /** JetStream replicas of every stream (1, 3 or 5). Used when creating; an existing stream keeps its own. */
  replicas: number
  /** How long finished jobs (and idempotency keys) are kept. */
  retentionMs: number
  operationTimeoutMs: number
}

export interface OpenedStreams extends StreamNames {
  idem: string
}

/** Longest deduplication window (retried submits within it are stored once). */
const DUPLICATE_WINDOW_MS = 120_000
const ns = (ms: number) => ms * 1_000_000

function configs(o: OpenOptions): Array<Partial<StreamConfig> & { name: string }> {
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
      max_msgs_per_subject: 1,
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
  for (const cfg of configs(o)) {
    for (let attempt = 0; ; attempt++) {
      try {
        await ensure(jsm, cfg, log)
        break
      } catch (err) {
        if (!isTransient(err) || Date.now() > deadline)
          throw errors.STORE(`cannot open stream ${cfg.name}: ${(err as Error).message}`, { cause: err })
        await sleep(Math.min(50 * 2 ** attempt, 1000))
      }
    }
  }
  return { ...streamNames(o.cluster), idem: `bosun_${o.cluster}_idem` }
}

async function ensure(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
  log: Logger,
): Promise<void> {
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
      if (!/already in use/i.test((addErr as Error).message)) throw addErr
      info = await jsm.streams.info(cfg.name) // a concurrent first start created it
    }
  }
  if (info.config.num_replicas !== cfg.num_replicas) {
    log.warn(
      { stream: cfg.name, want: cfg.num_replicas, have: info.config.num_replicas },
      'stream exists with another replica count; keeping it',
    )
  }
  if (info.config.max_age !== cfg.max_age || info.config.duplicate_window !== cfg.duplicate_window) {
    await jsm.streams.update(cfg.name, {
      ...info.config,
      max_age: cfg.max_age!,
      duplicate_window: cfg.duplicate_window!,
    })
    log.info({ stream: cfg.name, maxAgeMs: (cfg.max_age ?? 0) / 1e6 }, 'stream retention updated')
  }
}
