/**
 * The boss's in-memory table of jobs: the authoritative state of every job during one term, and
 * the write-behind to the durable store. Records change here only through commit.ts; this file
 * keeps them, counts them by phase, and writes the newest snapshot with a fenced compare-and-set —
 * serialised and coalesced per job (a job that finishes quickly is written once, not once per
 * state), retried while the term lasts, abandoned the moment it ends.
 */
import { errors, isBosunError, type Logger } from '../../runner/index.js'
import { isFinal, type Job, type JobState } from '../../jobs/model.js'
import type { BossStore } from './store-port.js'
import { fitRecord } from './transitions.js'

export type Phase = 'queued' | 'running' | 'final'

export interface Tracked {
  job: Job
  /** Store revision of the last record we read or wrote (0: unknown). */
  revision: number
  /** The record at `revision` (what the store holds, as far as we know). */
  stored: Job | undefined
  phase: Phase
  /** Bumped on every enqueue (see ReadyQueue): older queue entries of the job are stale. */
  token: number
  /** ms timestamp of the last dispatch (or adoption). */
  dispatchedAt: number
  /** Times its worker vanished during this term. */
  losses: number
  localVersion: number
  storedVersion: number
  chain: Promise<void>
  runningTimer: NodeJS.Timeout | undefined
  /** Its final state was announced (once per job). */
  announced: boolean
}

export function phaseOf(state: JobState): Phase {
  return state === 'queued' ? 'queued' : state === 'running' ? 'running' : 'final'
}

const RETRY_MIN_MS = 50
const RETRY_MAX_MS = 2000

export interface JobTableHooks {
  /** The store refused a write because the record carries a newer epoch. */
  onFenced(err: unknown, jobId: string): void
  /** The store holds a final record this term did not know (a predecessor's late write): it was kept. */
  onDiscovered(t: Tracked, job: Job, revision: number): void
}

export class JobTable {
  private readonly jobs = new Map<string, Tracked>()
  private readonly counts: Record<Phase, number> = { queued: 0, running: 0, final: 0 }
  private readonly ending = new AbortController()

  constructor(
    private readonly store: BossStore,
    private readonly epoch: number,
    private readonly logger: Logger,
    private readonly hooks: JobTableHooks,
  ) {}

  get size(): number {
    return this.jobs.size
  }

  /** How many tracked jobs are in `phase` (e.g. the queue depth reported for backpressure). */
  count(phase: Phase): number {
    return this.counts[phase]
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
      announced: false,
    }
    const old = this.jobs.get(job.id)
    if (old) this.counts[old.phase]--
    this.jobs.set(job.id, t)
    this.counts[t.phase]++
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
    if (!t) return
    if (t.runningTimer) clearTimeout(t.runningTimer)
    this.counts[t.phase]--
    this.jobs.delete(id)
  }

  /**
   * Change a job in memory (only commit.ts calls this); `persist` makes it durable. `sameChange`: the
   * record is a cut-down form of the one being written (not a new change to write).
   */
  set(t: Tracked, job: Job, sameChange = false): void {
    const phase = phaseOf(job.state)
    if (this.jobs.get(job.id) === t) {
      this.counts[t.phase]--
      this.counts[phase]++
    }
    t.job = job
    t.phase = phase
    if (!sameChange) t.localVersion++
  }

  /**
   * Make the newest snapshot of `t` durable (coalesced, serialised, fenced, retried while the term
   * lasts). Resolves once the store holds it (or a final record we did not know, which is then
   * kept); rejects when the term ended or a newer boss wrote the record.
   */
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

  /** The term ended: every write in flight is abandoned (no retry outlives the term). */
  stop(): void {
    this.ending.abort('the boss term ended')
    for (const t of this.jobs.values()) if (t.runningTimer) clearTimeout(t.runningTimer)
  }

  private get active(): boolean {
    return !this.ending.signal.aborted
  }

  private async write(t: Tracked, snapshot: Job): Promise<void> {
    let delay = RETRY_MIN_MS
    for (let shrinks = 0; ;) {
      if (!this.active) throw errors.NOT_LEADER('the boss term ended before the write')
      const known = t.stored !== undefined && t.revision > 0 ? t.stored : undefined
      try {
        const written = await this.store.mutate(
          t.job.id,
          this.epoch,
          // A record we did not know that is already final (a predecessor recorded a result after we
          // read it) is kept, never overwritten by our older view: a CAS conflict is not a blind write.
          (current) => (current !== known && isFinal(current.state) ? null : { ...snapshot, epoch: this.epoch }),
          known ? { job: known, revision: t.revision, signal: this.ending.signal } : { signal: this.ending.signal },
        )
        if (!this.active) throw errors.NOT_LEADER('the boss term ended during the write')
        if (written) {
          t.revision = written.revision
          t.stored = written.job
          if (!written.changed) this.hooks.onDiscovered(t, written.job, written.revision)
        }
        return
      } catch (err) {
        if (isBosunError(err, errors.STALE_EPOCH)) {
          this.hooks.onFenced(err, t.job.id)
          throw err
        }
        if (!this.active) throw errors.NOT_LEADER('the boss term ended during the write', { cause: err })
        const max = isBosunError(err, errors.BODY_TOO_LARGE) ? err.details?.max : undefined
        if (typeof max === 'number' && shrinks++ < 2) {
          const smaller = fitRecord(snapshot, max, new Date())
          this.logger.warn(
            {
              jobId: t.job.id,
              bytes: err instanceof Error ? (err as { details?: { bytes?: unknown } }).details?.bytes : undefined,
              max,
            },
            'job record too large to store; cut to fit',
          )
          if (t.job === snapshot) this.set(t, smaller, true)
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
