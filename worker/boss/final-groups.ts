/**
 * The boss's writer of final records in groups (jobs/streams/final-groups.ts): the finals of one
 * part of a batch that become ready while the part's previous group is being written go out together
 * as the next group, so a burst of results costs a few DONE messages, not one per job, and a part
 * never has two of its group writes in flight (they would race each other on the chain).
 *
 * Which finals: first runs of jobs no one waits for and without a callback (`groupable`) — decided by
 * what the job's submission says, so every boss decides the same for a job, and a job's final is
 * either always in a group or always on its own subject. The chain gives "the first final of a run
 * stands": a write that meets groups it did not know takes their finals for its jobs there
 * (`created: false`) — for those queued meanwhile too — and writes the rest after them.
 */
import { errors, isBosunError, type Logger } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import { partOf, spanOf, type FinalGroup, type GroupSpan } from '../../jobs/streams/final-groups.js'
import { parseJobId } from '../../jobs/streams/layout.js'
import { compactGroup } from '../../jobs/streams/group-codec.js'
import type { BossStore } from './store-port.js'

/** A final record as stored: the record that stands, whether this write created it, its DONE sequence. */
export interface WrittenFinal {
  job: Job
  created: boolean
  seq: number
}

/** Lost races in a row on one batch's chain before a write gives up (the caller retries it). */
const MAX_LOST_RACES = 8

interface Waiting {
  job: Job
  resolve(w: WrittenFinal): void
  reject(err: unknown): void
}

interface Chain {
  batch: string
  part: number
  /** The last group of the part this term knows (0: none). */
  last: number
  /** Every group of the part this term knows, oldest first. */
  spans: GroupSpan[]
  /**
   * Finals of the part another writer stored (met when this term's write was refused): a later write
   * of one of those jobs — the term ran it again, not knowing — is answered with the stored final,
   * as a compare-and-set on the job's own subject would be.
   */
  known: Map<string, WrittenFinal>
  /** Finals waiting for the next group. */
  queue: Waiting[]
  writing: boolean
}

/** Whether a job's final goes into its batch's group (the same answer in every boss, for every attempt). */
export function groupable(job: Job, waited: boolean): boolean {
  return (job.run ?? 0) === 0 && !waited && job.callbackUrl === undefined
}

export class FinalGroups {
  /** Per batch, the chain of each of its parts written this term. */
  private readonly chains = new Map<string, Map<number, Chain>>()

  constructor(
    private readonly store: BossStore,
    private readonly epoch: number,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {}

  /**
   * Write `job`'s final record (a groupable one, of `batch`) with the others of its batch; resolves with
   * the record that stands. Rejects as a single write would (BODY_TOO_LARGE for a record that fits in
   * no group; a store failure), and the caller retries.
   */
  write(batch: string, job: Job): Promise<WrittenFinal> {
    const part = partOf(parseJobId(job.id)?.index ?? 0)
    let parts = this.chains.get(batch)
    if (!parts) this.chains.set(batch, (parts = new Map<number, Chain>()))
    let chain = parts.get(part)
    if (!chain)
      parts.set(part, (chain = { batch, part, last: 0, spans: [], known: new Map(), queue: [], writing: false }))
    const c = chain
    const stored = c.known.get(job.id)
    if (stored) return Promise.resolve(stored)
    const written = new Promise<WrittenFinal>((resolve, reject) => c.queue.push({ job, resolve, reject }))
    if (!c.writing) {
      c.writing = true
      setImmediate(() => void this.drain(c))
    }
    return written
  }

  /**
   * The batch closed: nothing more is written to its chain this term (a write after all would start
   * over and learn the chain from the refusal).
   */
  forget(batch: string): void {
    const parts = this.chains.get(batch)
    if (parts && [...parts.values()].every((c) => c.queue.length === 0)) this.chains.delete(batch)
  }

  /** Write the part's queued finals, group after group, until none is queued. */
  private async drain(c: Chain): Promise<void> {
    try {
      while (c.queue.length > 0) {
        const items = c.queue.splice(0)
        await this.writeGroup(c, items)
      }
    } finally {
      c.writing = false
    }
  }

  /** Write `items` as one group (halved until it fits), each item told the record that stands. */
  private async writeGroup(c: Chain, items: Waiting[]): Promise<void> {
    const { batch, part } = c
    let rest = items
    try {
      for (let lost = 0; (rest = this.answerKnown(c, rest)).length > 0; lost++) {
        if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended before the write')
        if (lost > MAX_LOST_RACES)
          throw errors.STORE(`batch ${batch}, part ${part}: the chain of final groups kept moving`)
        const finals = rest.map((w) => w.job)
        const group: FinalGroup = { v: 1, batch, part, epoch: this.epoch, finals, earlier: c.spans }
        const res = await this.store.writeFinalGroup(group, c.last, this.signal)
        if (res.ok) {
          c.last = res.seq
          c.spans = [...c.spans, spanOf(res.seq, group.finals)]
          for (const w of rest) w.resolve({ job: w.job, created: true, seq: res.seq })
          return
        }
        // Groups this term did not know (a predecessor's, or one of ours whose answer was lost): a
        // final there is the job's (the first final of a run stands); the others go after them.
        const waiting = new Map(rest.map((w) => [w.job.id, w]))
        for (const g of res.after)
          for (const job of g.group.finals) {
            const found: WrittenFinal = { job, created: false, seq: g.seq }
            c.known.set(job.id, found)
            waiting.get(job.id)?.resolve(found)
            waiting.delete(job.id)
          }
        c.last = res.last
        c.spans = [...c.spans, ...res.after.map((g) => spanOf(g.seq, g.group.finals))]
        rest = [...waiting.values()]
        if (res.after.length > 0)
          this.log.info({ batch, part, groups: res.after.length }, 'final groups found written by another boss')
      }
    } catch (err) {
      if (isBosunError(err, errors.BODY_TOO_LARGE) && rest.length > 1) {
        const half = Math.ceil(rest.length / 2)
        await this.writeGroup(c, rest.slice(0, half))
        await this.writeGroup(c, rest.slice(half))
        return
      }
      for (const w of rest) w.reject(this.recordLimit(err, c, w.job))
    }
  }

  /**
   * Answer the items whose final another writer's group holds, learned after they were queued (a
   * refusal met that group while they waited for the next write): written again, the job would have
   * two finals. The rest is still to be written.
   */
  private answerKnown(c: Chain, items: Waiting[]): Waiting[] {
    if (c.known.size === 0) return items
    return items.filter((w) => {
      const stored = c.known.get(w.job.id)
      if (stored) w.resolve(stored)
      return !stored
    })
  }

  /**
   * A group of one that does not fit: the limit its record must be cut to is the store's less what the
   * group adds around it (the caller cuts the record to `details.max`: transitions.ts fitRecord).
   */
  private recordLimit(err: unknown, c: Chain, job: Job): unknown {
    if (!isBosunError(err, errors.BODY_TOO_LARGE)) return err
    const max = err.details?.max
    if (typeof max !== 'number') return err
    const alone = Buffer.byteLength(JSON.stringify(job))
    const group: FinalGroup = { v: 1, batch: c.batch, part: c.part, epoch: this.epoch, finals: [job], earlier: c.spans }
    const grouped = Buffer.byteLength(JSON.stringify(compactGroup(group)))
    // A group may store a record in fewer bytes than the record alone (group-codec.ts): the record
    // itself must fit all the same (a later write of it alone — a reopened record — must too).
    const limit = Math.min(max, max - (grouped - alone))
    return errors.BODY_TOO_LARGE(err.message, { details: { ...err.details, max: limit } })
  }
}
