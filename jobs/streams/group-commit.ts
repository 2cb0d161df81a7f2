/**
 * Group commit of one-by-one submits: jobs added while a write is in flight wait for it and go
 * together in the next batch message, so 64 concurrent submits cost a few JetStream writes, not 64,
 * while a lone submit is written at once. Each job's id is known when it is added (the open group's
 * batch id and its place in it), so a caller can subscribe to the job before it is stored; the
 * returned promise settles once the group is durable — or with the job that already holds its
 * idempotency key (the job then leaves a hole in the batch).
 */
import { errors } from '../../runner/errors.js'
import { withFields, type Job } from '../model.js'
import { resolveClaim, type ClaimPorts } from './claims.js'
import { jobIdOf, MAX_BATCH_JOBS } from './layout.js'
import { encode, type SubmittedJob } from './records.js'
import type { SubmitPlan } from './submit.js'

/** Room left for headers and the record's own fields under max_payload. */
const HEADER_ROOM = 4096

export interface GroupCommitPorts extends ClaimPorts {
  publish(plan: SubmitPlan, jobs: ReadonlyArray<SubmittedJob | null>, createdAt: string): Promise<void>
  /** These ids' claims may stand but their jobs will never be sent (claims.ts's AbandonedClaims). */
  abandon(jobIds: readonly string[]): void
  maxPayload(): number
  newBatchId(): string
}

export interface Added {
  id: string
  /** Settles once the job is durable (null), or with the job that holds its idempotency key. */
  stored: Promise<Job | null>
}

interface Group {
  batch: string
  /** The batch record's createdAt: its first job's; a later job with another time carries its own. */
  createdAt: string
  jobs: SubmittedJob[]
  keys: Array<string | undefined>
  bytes: number
  settle: Array<{ resolve(existing: Job | null): void; reject(err: unknown): void }>
}

export class GroupCommitter {
  private open: Group | undefined
  private readonly waiting: Group[] = []
  private inFlight = 0
  private scheduled = false

  constructor(
    private readonly ports: GroupCommitPorts,
    private readonly maxInFlight = 4,
    private readonly maxBatch = MAX_BATCH_JOBS,
  ) {}

  /** Groups waiting or being written (for close()). */
  get busy(): boolean {
    return this.inFlight > 0 || this.open !== undefined || this.waiting.length > 0
  }

  /**
   * Add one job to the open group, created at `createdAt` (the time its submit was taken, which its
   * `runAt` counts from and its caller answers with). Throws BODY_TOO_LARGE when the job alone does not
   * fit a message.
   */
  add(job: SubmittedJob, key: string | undefined, createdAt: string): Added {
    const own = withFields(job, { createdAt })
    const bytes = encode(own).length + 1
    const max = this.ports.maxPayload() - HEADER_ROOM
    if (bytes > max)
      throw errors.BODY_TOO_LARGE(`the job is ${bytes} bytes; the store takes at most ${max}`, {
        details: { bytes, max },
      })
    let g = this.open
    if (!g || g.jobs.length >= this.maxBatch || g.bytes + bytes > max) {
      if (g) this.waiting.push(g)
      g = this.open = { batch: this.ports.newBatchId(), createdAt, jobs: [], keys: [], bytes: 0, settle: [] }
    }
    const id = jobIdOf(g.batch, g.jobs.length)
    // A job that waited behind a write in flight keeps its own time, not the group's write time.
    g.jobs.push(createdAt === g.createdAt ? job : own)
    g.keys.push(key)
    g.bytes += bytes
    const stored = new Promise<Job | null>((resolve, reject) => g.settle.push({ resolve, reject }))
    // Nothing in flight: written now, not a turn later (≈ 0.15 ms of a `?wait` request's latency here);
    // jobs added while it is written gather behind it.
    if (this.inFlight === 0 && !this.scheduled && this.waiting.length === 0) this.flush()
    else this.schedule()
    return { id, stored }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight) {
      if (this.waiting.length === 0 && this.open) {
        this.waiting.push(this.open)
        this.open = undefined
      }
      const g = this.waiting.shift()
      if (!g) return
      this.inFlight++
      this.write(g)
        .then(
          (held) => g.settle.forEach((s, i) => s.resolve(held[i] ?? null)),
          (err: unknown) => g.settle.forEach((s) => s.reject(err)),
        )
        .finally(() => {
          this.inFlight--
          if (this.open || this.waiting.length > 0) this.schedule()
        })
      // Let more calls gather behind the writes in flight rather than send them one by one.
      if (this.waiting.length === 0) return
    }
  }

  /** Claim the group's keys, then write it (a job whose key another job holds is a hole). */
  private async write(g: Group): Promise<Array<Job | null>> {
    const ids = g.jobs.map((_, i) => jobIdOf(g.batch, i))
    const first = new Map<string, number>()
    const repeats = new Set<number>()
    g.keys.forEach((key, i) => {
      if (key === undefined) return
      if (first.has(key)) repeats.add(i)
      else first.set(key, i)
    })
    const held: Array<Job | null> = await Promise.all(
      g.keys.map((key, i) =>
        key === undefined || repeats.has(i) ? Promise.resolve(null) : resolveClaim(this.ports, key, ids[i]!),
      ),
    ).catch((err: unknown) => {
      this.ports.abandon(ids) // nothing of the group is sent: its claims that landed name jobs that never will be
      throw err
    })
    const jobs = g.jobs.map((j, i) => (held[i] || repeats.has(i) ? null : j))
    const plan: SubmitPlan = { chunks: [{ batch: g.batch, start: 0, end: g.jobs.length }], ids }
    await this.ports.publish(plan, jobs, g.createdAt)
    // A key repeated within the group names the group's first job with that key.
    for (const i of repeats) {
      const f = first.get(g.keys[i]!)!
      held[i] = held[f] ?? (await this.stored(ids[f]!))
    }
    return held
  }

  private async stored(id: string): Promise<Job> {
    const job = await this.ports.get(id)
    if (!job) throw errors.STORE(`job ${id} was not found right after it was stored`)
    return job
  }
}
