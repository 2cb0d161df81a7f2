/**
 * The boss's in-memory table of jobs: the authoritative state of every job during one term, and
 * the write-behind to the durable store. Every change is made here first, then persisted with a
 * fenced compare-and-set; writes of one job are serialised and coalesced (only the newest snapshot
 * is written), so a job that finishes quickly is written once, not once per state.
 */
import { errors, isBosunError, type Logger } from '../../runner/index.js'
import { isFinal, type Job, type JobState } from '../../jobs/model.js'
import { shrunk } from './outcomes.js'
import type { BossStore } from './store-port.js'

export type Phase = 'queued' | 'running' | 'final'

export interface Tracked {
  job: Job
  /** Store revision of the last record we read or wrote (0: unknown). */
  revision: number
  /** The record at `revision` (what the store holds, as far as we know). */
  stored: Job | undefined
  phase: Phase
  /** Bumped on every enqueue (see ReadyQueue). */
  token: number
  /** ms timestamp of the last dispatch. */
  dispatchedAt: number
  /** Times its worker vanished during this term. */
  losses: number
  localVersion: number
  storedVersion: number
  chain: Promise<void>
  runningTimer: NodeJS.Timeout | undefined
}

export function phaseOf(state: JobState): Phase {
  return state === 'queued' ? 'queued' : state === 'running' ? 'running' : 'final'
}

const RETRY_MIN_MS = 50
const RETRY_MAX_MS = 2000

export class JobTable {
  private readonly jobs = new Map<string, Tracked>()
  private active = true

  constructor(
    private readonly store: BossStore,
    private readonly epoch: number,
    private readonly logger: Logger,
    /** Called when the store refuses a write because the record carries a newer epoch. */
    private readonly onFenced: (err: unknown, jobId: string) => void,
  ) {}

  get size(): number {
    return this.jobs.size
  }

  get(id: string): Tracked | undefined {
    return this.jobs.get(id)
  }

  values(): IterableIterator<Tracked> {
    return this.jobs.values()
  }

  /** Track a record read from the store. */
  load(job: Job, revision: number): Tracked {
    const t: Tracked = {
      job,
      revision,
      stored: job,
      phase: phaseOf(job.state),
      token: 0,
      dispatchedAt: 0,
      losses: 0,
      localVersion: 0,
      storedVersion: 0,
      chain: Promise.resolve(),
      runningTimer: undefined,
    }
    this.jobs.set(job.id, t)
    return t
  }

  /** Record a store update made by someone else (watch). */
  observe(t: Tracked, job: Job, revision: number): void {
    if (revision > t.revision) {
      t.revision = revision
      t.stored = job
    }
  }

  delete(id: string): void {
    const t = this.jobs.get(id)
    if (t?.runningTimer) clearTimeout(t.runningTimer)
    this.jobs.delete(id)
  }

  /** Change a job in memory (the authoritative copy); call `persist` to make it durable. */
  set(t: Tracked, job: Job): void {
    t.job = job
    t.phase = phaseOf(job.state)
    t.localVersion++
  }

  /** Write the newest snapshot of `t` (coalesced, serialised, fenced, retried while the term lasts). */
  persist(t: Tracked): Promise<void> {
    const target = t.localVersion
    t.chain = t.chain.then(async () => {
      if (t.storedVersion >= target) return
      const version = t.localVersion
      await this.write(t, t.job)
      t.storedVersion = Math.max(t.storedVersion, version)
    })
    return t.chain
  }

  stop(): void {
    this.active = false
    for (const t of this.jobs.values()) if (t.runningTimer) clearTimeout(t.runningTimer)
  }

  private async write(t: Tracked, snapshot: Job): Promise<void> {
    let delay = RETRY_MIN_MS
    let shrinks = 0
    for (;;) {
      if (!this.active) throw errors.NOT_LEADER('the boss term ended before the write')
      try {
        const known = t.stored !== undefined && t.revision > 0 ? { job: t.stored, revision: t.revision } : undefined
        const written = await this.store.mutate(t.job.id, this.epoch, () => ({ ...snapshot, epoch: this.epoch }), known)
        if (written) {
          t.revision = written.revision
          t.stored = written.job
        }
        return
      } catch (err) {
        if (isBosunError(err, errors.STALE_EPOCH)) {
          this.onFenced(err, t.job.id)
          throw err
        }
        if (isBosunError(err, errors.BODY_TOO_LARGE) && shrinks++ < 2) {
          const bytes = typeof err.details?.bytes === 'number' ? err.details.bytes : undefined
          const smaller = shrunk(snapshot, bytes, new Date())
          this.logger.warn({ jobId: t.job.id, bytes }, 'job record too large to store; storing it failed without its result')
          if (t.job === snapshot) this.set(t, smaller)
          snapshot = smaller
          continue
        }
        this.logger.warn({ err, jobId: t.job.id, retryInMs: delay }, 'job write failed; retrying')
        await new Promise((r) => setTimeout(r, delay))
        delay = Math.min(RETRY_MAX_MS, delay * 2)
      }
    }
  }
}

export function isFinalJob(job: Job): boolean {
  return isFinal(job.state)
}
