/**
 * Reading jobs from the store, as the API does — never through the boss. A job is found from its
 * id alone: its final record (DONE: its own, or in a group of its batch, final-groups.ts) if it
 * finished, else its submission (SUBMIT) with what the boss changed (STATE). Listings are pages,
 * newest first, at a cost that follows the page size: unfinished jobs newest batch first (the open
 * batches, read backwards), then finished jobs newest finished first (the INDEX stream, read
 * backwards through a state/function subject filter). The cursor is opaque to clients and names the
 * segment and position to continue from.
 */
import type { Logger } from '../../runner/logger.js'
import { errors } from '../../runner/errors.js'
import { isFinal, type Job, type JobState } from '../model.js'
import { parseIndexEntry, type ReopenedRecord } from './reopened.js'
import { DoneFinder } from './final-groups.js'
import type { StreamIO } from './io.js'
import { indexFilter, parseJobId, type StreamNames, type Subjects } from './layout.js'
import { assemble, decodeIndex, decodeState, decodeSubmit, doneSet, type BatchState } from './records.js'
import { walkBackwards } from './walk.js'

export interface ListQuery {
  state?: JobState
  function?: string
  limit: number
  cursor?: string
}

export interface ListPage {
  jobs: Job[]
  /** Present when more jobs may match: pass it as `cursor` for the next page. */
  next?: string
}

/**
 * Where a page starts: in the unfinished segment (submit sequence, job index) or the finished one (index
 * sequence, position).
 */
interface Cursor {
  segment: 'u' | 'f'
  seq: number
  pos: number
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.segment}.${c.seq}.${c.pos}`, 'utf8').toString('base64url')
}

/** The cursor, or a 400 (BOSUN_ERR_VALIDATION) when it is not one of ours. */
export function decodeCursor(s: string): Cursor {
  const m = /^([uf])\.(\d{1,16})\.(\d{1,7})$/.exec(Buffer.from(s, 'base64url').toString('utf8'))
  if (!m || s.length > 64) throw errors.VALIDATION('malformed cursor', { details: { cursor: s.slice(0, 64) } })
  return { segment: m[1] as 'u' | 'f', seq: Number(m[2]), pos: Number(m[3]) }
}

function withoutReopened(rec: ReopenedRecord): Job {
  const { reopened: _at, ...job } = rec
  return job
}

/** Fewest final records fetched at once (a page fetches what it still needs, plus one to know if more follow). */
const MIN_PARALLEL_READS = 8

export class JobReader {
  constructor(
    private readonly io: StreamIO,
    private readonly subjects: Subjects,
    private readonly streams: StreamNames,
    private readonly log: Logger,
  ) {}

  /** The job, or null when there is no such job (never stored, or finished longer ago than the retention). */
  async get(id: string): Promise<Job | null> {
    const where0 = parseJobId(id)
    if (!where0) return null
    // A final record is written once per run: when there is one it is the answer (one round trip: the
    // job's own subject and its batch's last group — the usual case for a job read after its finished
    // event or from history). A reopened record points to the batch of the job's next run (reopened.ts).
    const finder = this.finder()
    const done = (await finder.find(id, false))?.record
    if (done?.kind === 'final') return done.job
    const reopened = done?.kind === 'reopened' ? done.job : undefined
    const where = reopened ? reopened.reopened : where0
    // With the batch's records, its earlier groups (a final grouped before the batch's done mask shows it).
    const [subMsg, stateMsg, grouped] = await Promise.all([
      this.io.last(this.streams.submit, this.subjects.submit(where.batch)),
      this.io.last(this.streams.state, this.subjects.state(where.batch)),
      reopened ? undefined : finder.find(id),
    ])
    if (grouped?.record.kind === 'final') return grouped.record.job
    // Its batch closed or its done mask came since the first read: it finished meanwhile (null if its
    // final record has expired since, or it never existed). A reopened run whose batch is not
    // submitted yet (its boss died in between; the next one submits it) is the reopened record.
    if (!subMsg) return (await this.final(id)) ?? (reopened ? withoutReopened(reopened) : null)
    const sub = decodeSubmit(subMsg.data, where.batch)
    if (!sub) return this.garbage(this.streams.submit, subMsg.seq)
    const state = stateMsg ? decodeState(stateMsg.data, where.batch) : null
    if (stateMsg && !state) return this.garbage(this.streams.state, stateMsg.seq)
    if (sub.jobs[where.index] === undefined || sub.jobs[where.index] === null) return null
    if (state && doneSet(state).has(where.index)) return this.final(id)
    // Unfinished when the first read was made (a result landing since is seen by the next read).
    const job = assemble(sub, where.index, state?.jobs[String(where.index)], state?.epoch ?? 0)
    if (job.id !== id) return null
    return reopened?.history ? { ...job, history: reopened.history } : job
  }

  /** A page of jobs matching the query, newest first. */
  async list(q: ListQuery): Promise<ListPage> {
    const cursor = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined
    const filter = indexFilter(q.state, q.function)
    const unfinishedWanted = q.state === undefined || !isFinal(q.state)
    const finishedWanted = q.state === undefined || isFinal(q.state)
    const jobs: Job[] = []
    if (unfinishedWanted && (cursor === undefined || cursor.segment === 'u')) {
      const next = await this.unfinished(q, cursor, jobs)
      if (next) return { jobs, next: encodeCursor(next) }
    }
    if (finishedWanted) {
      const from = cursor?.segment === 'f' ? cursor : undefined
      const next = await this.finished(q, filter, from, jobs)
      if (next) return { jobs, next: encodeCursor(next) }
    }
    return { jobs }
  }

  /** Unfinished jobs of the open batches, newest first; returns where the next page starts, if the page filled. */
  private async unfinished(q: ListQuery, from: Cursor | undefined, out: Job[]): Promise<Cursor | undefined> {
    const before = from ? from.seq + 1 : (await this.io.bounds(this.streams.submit)).last + 1
    for await (const m of walkBackwards(this.io, this.streams.submit, this.subjects.allSubmits, before)) {
      const batch = this.subjects.batchOf(m.subject)
      const sub = batch ? decodeSubmit(m.data, batch) : null
      if (!batch || !sub) continue
      const stateMsg = await this.io.last(this.streams.state, this.subjects.state(batch))
      const state: BatchState | null = stateMsg ? decodeState(stateMsg.data, batch) : null
      const done = state ? doneSet(state) : new Set<number>()
      const top = from && m.seq === from.seq ? from.pos - 1 : sub.jobs.length - 1
      for (let i = top; i >= 0; i--) {
        if (sub.jobs[i] === null || sub.jobs[i] === undefined || done.has(i)) continue
        const job = assemble(sub, i, state?.jobs[String(i)], state?.epoch ?? 0)
        if (isFinal(job.state)) continue // decided by the boss; listed with the finished once its record is written
        if (q.state !== undefined && job.state !== q.state) continue
        if (q.function !== undefined && job.function !== q.function) continue
        if (out.length === q.limit) return { segment: 'u', seq: m.seq, pos: i + 1 }
        out.push(job)
      }
    }
    return undefined
  }

  /** Finished jobs newest finished first; returns where the next page starts, if the page filled. */
  private async finished(
    q: ListQuery,
    filter: { state: JobState | '*'; fn: string },
    from: Cursor | undefined,
    out: Job[],
  ): Promise<Cursor | undefined> {
    const stream = this.streams.index
    const finder = this.finder() // one page reads each group once
    const before = from ? from.seq + 1 : (await this.io.bounds(stream)).last + 1
    for await (const m of walkBackwards(this.io, stream, this.subjects.index(filter.state, filter.fn), before)) {
      const rec = decodeIndex(m.data)
      if (!rec) continue
      const top = from && m.seq === from.seq ? from.pos - 1 : rec.ids.length - 1
      const positions: number[] = []
      for (let k = top; k >= 0; k--) positions.push(k)
      for (let start = 0; start < positions.length;) {
        const want = Math.max(MIN_PARALLEL_READS, q.limit - out.length + 1)
        const slice = positions.slice(start, start + want)
        start += slice.length
        const entries = slice.map((k) => parseIndexEntry(rec.ids[k]!))
        const found = await Promise.all(entries.map((e) => this.final(e.id, finder)))
        for (let j = 0; j < slice.length; j++) {
          const job = found[j]
          // Expired between the index and now, or retried since (an entry names the run it indexed).
          if (!job || (job.run ?? 0) !== entries[j]!.run) continue
          if (out.length === q.limit) return { segment: 'f', seq: m.seq, pos: slice[j]! + 1 }
          out.push(job)
        }
      }
    }
    return undefined
  }

  /** The job's final record (null: none, or it was reopened for another run). */
  private async final(id: string, finder = this.finder()): Promise<Job | null> {
    const done = (await finder.find(id))?.record
    return done?.kind === 'final' ? done.job : null
  }

  /** Reads of DONE (garbage skipped with a warning); its reads are shared, so each answers one moment. */
  private finder(): DoneFinder {
    return new DoneFinder({ io: this.io, streams: this.streams, subjects: this.subjects }, (seq, problem) =>
      this.log.warn({ stream: this.streams.done, seq, problem }, 'skipping garbage in the job store'),
    )
  }

  private garbage(stream: string, seq: number): null {
    this.log.warn({ stream, seq }, 'skipping garbage in the job store')
    return null
  }
}
