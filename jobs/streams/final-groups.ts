/**
 * Final records in groups: the boss writes the finals of one part of a batch (GROUP_PART_JOBS
 * consecutive jobs) that finish together as one DONE message, `bosun.<c>.done.g.<batch>.<part>`,
 * where it used to write one message per job (nats-server's
 * work per stored message, and the boss's publish and acknowledgement, were the largest per-job
 * costs left; docs/design-final-groups.md). Only first runs of jobs no one waits for and without a
 * callback are grouped (worker/boss/final-groups.ts); everything else keeps its own `done.<id>`.
 *
 * The groups of a part form a chain: each write expects the subject's last sequence the writer
 * knows (0 for the first), so two writers cannot interleave unseen, and each names the part's
 * earlier groups with the lowest and highest job index each holds, so a reader finds any grouped
 * final from the part's last group with one more read (rarely more: groups' index spans may
 * overlap). Parts bound what a reader of one job reads (at most a part's finals), whatever the batch's
 * size. A job's own `done.<id>` (a reopened record, a later run) wins over a group.
 */
import type { Job } from '../model.js'
import { isObject, isSafeCount } from '../parse.js'
import { jobShapeProblem } from '../store-codec.js'
import type { StoredMessage, StreamIO } from './io.js'
import { isBatchId, jobIdOf, MAX_BATCH_JOBS, parseJobId, type StreamNames, type Subjects } from './layout.js'
import { parseJson } from './records.js'
import { decodeDone, type DoneRecord } from './reopened.js'
import { expandGroup } from './group-codec.js'

/** Jobs of one part of a batch: job `i` is in part `floor(i / GROUP_PART_JOBS)`. */
export const GROUP_PART_JOBS = 32

/** The part of a batch that job index `index` is in. */
export function partOf(index: number): number {
  return Math.floor(index / GROUP_PART_JOBS)
}

/** An earlier group of the batch: its DONE sequence, and the lowest and highest job index it holds. */
export type GroupSpan = [seq: number, lo: number, hi: number]

/** One group of final records of one batch. */
export interface FinalGroup {
  v: 1
  batch: string
  /** Its part of the batch: every final in it is of a job of that part. */
  part: number
  /** The writer's fencing epoch. */
  epoch: number
  /** First-run final records of jobs of `part` of `batch`. */
  finals: Job[]
  /** The part's groups before this one (as its writer knew them), oldest first. */
  earlier: GroupSpan[]
}

/** A group as stored: its DONE sequence too. */
export interface StoredGroup {
  seq: number
  group: FinalGroup
}

/** The group in a stored message, or null when it is not one (garbage: the caller warns). */
export function decodeGroup(data: Uint8Array, batch: string, part: number): FinalGroup | null {
  const v = expandGroup(parseJson(data))
  if (!isObject(v) || v.v !== 1 || v.batch !== batch || v.part !== part || !isSafeCount(v.epoch)) return null
  if (!Array.isArray(v.finals) || v.finals.length === 0 || !Array.isArray(v.earlier)) return null
  if (v.earlier.length > GROUP_PART_JOBS || !v.earlier.every(isSpan)) return null
  const seen = new Set<string>()
  for (const f of v.finals as unknown[]) {
    if (jobShapeProblem(f) !== null) return null
    const job = f as Job
    const where = parseJobId(job.id)
    if (!where || where.batch !== batch || partOf(where.index) !== part) return null
    if (seen.has(job.id) || (job.run ?? 0) !== 0) return null
    if (job.state !== 'succeeded' && job.state !== 'failed' && job.state !== 'cancelled') return null
    seen.add(job.id)
  }
  return v as unknown as FinalGroup
}

function isSpan(x: unknown): x is GroupSpan {
  if (!Array.isArray(x) || x.length !== 3 || !x.every(isSafeCount)) return false
  const [seq, lo, hi] = x as GroupSpan
  return seq > 0 && lo <= hi && hi < MAX_BATCH_JOBS
}

/** The span of a group's finals (the lowest and highest job index), with its sequence. */
export function spanOf(seq: number, finals: readonly Job[]): GroupSpan {
  let lo = MAX_BATCH_JOBS
  let hi = -1
  for (const f of finals) {
    const i = parseJobId(f.id)?.index ?? 0
    lo = Math.min(lo, i)
    hi = Math.max(hi, i)
  }
  return [seq, lo, hi]
}

/** The batch and part of a group subject (`<prefix>.done.g.<batch>.<part>`), undefined for anything else. */
export function groupSubjectOf(subjects: Subjects, subject: string): { batch: string; part: number } | undefined {
  const prefix = `${subjects.prefix}.done.g.`
  if (!subject.startsWith(prefix)) return undefined
  const m = /^([^.]+)\.(\d{1,3})$/.exec(subject.slice(prefix.length))
  const part = m ? Number(m[2]) : -1
  return m && isBatchId(m[1]) && part < MAX_BATCH_JOBS / GROUP_PART_JOBS ? { batch: m[1], part } : undefined
}

/** The final of job `index` in `group`, if it holds one. */
export function finalIn(group: FinalGroup, index: number): Job | undefined {
  const id = jobIdOf(group.batch, index)
  return group.finals.find((j) => j.id === id)
}

/**
 * What DONE holds for a job, wherever it is: `seq` is the record's DONE sequence, `subjectSeq` the
 * last sequence of the job's own subject `done.<id>` (0: none).
 */
export interface FoundDone {
  record: DoneRecord
  seq: number
  subjectSeq: number
}

/**
 * Finds a job's record in DONE: its own subject, else the groups of its part of its batch. Reads of
 * groups are shared between the lookups of one finder (a listing page reads each group once).
 */
export class DoneFinder {
  private readonly owns = new Map<string, Promise<{ record?: FoundDone; seq: number } | null>>()
  private readonly lastGroups = new Map<string, Promise<StoredGroup | null>>()
  private readonly groupsAt = new Map<number, Promise<StoredGroup | null>>()

  constructor(
    private readonly d: { io: StreamIO; streams: StreamNames; subjects: Subjects },
    /** Told of garbage met on the way (a stored message that is not what its subject says). */
    private readonly onGarbage: (seq: number, problem: string) => void,
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * The record of job `id` (null: none, garbage included, which `onGarbage` hears of). `earlier: false`
   * looks no further than the job's own subject and its batch's last group (one round trip): a reader
   * that knows the job is unfinished otherwise need not read the batch's other groups.
   */
  async find(id: string, earlier = true): Promise<FoundDone | null> {
    const where = parseJobId(id)
    if (!where) return null
    const part = partOf(where.index)
    const [own, last] = await Promise.all([this.own(id), this.lastGroup(where.batch, part)])
    if (own?.record) return own.record
    const subjectSeq = own?.seq ?? 0
    if (!last) return null
    const here = finalIn(last.group, where.index)
    if (here) return { record: { kind: 'final', job: here }, seq: last.seq, subjectSeq }
    if (!earlier) return null
    const spans = last.group.earlier.filter(([, lo, hi]) => lo <= where.index && where.index <= hi)
    const groups = await Promise.all(spans.map(([seq]) => this.groupAt(where.batch, part, seq)))
    for (const g of groups) {
      const job = g ? finalIn(g.group, where.index) : undefined
      if (job) return { record: { kind: 'final', job }, seq: g!.seq, subjectSeq }
    }
    return null
  }

  /** The job's own subject: its record (undefined: none, or garbage) and the subject's last sequence. */
  private own(id: string): Promise<{ record?: FoundDone; seq: number } | null> {
    let p = this.owns.get(id)
    if (!p) {
      p = this.d.io.last(this.d.streams.done, this.d.subjects.done(id), this.signal).then((m) => {
        if (!m) return null
        const record = decodeDone(m.data, id)
        if (record.kind !== 'garbage') return { record: { record, seq: m.seq, subjectSeq: m.seq }, seq: m.seq }
        this.onGarbage(m.seq, record.problem)
        return { seq: m.seq }
      })
      this.owns.set(id, p)
    }
    return p
  }

  /** The last group of a part of a batch (null: none, or garbage). */
  private lastGroup(batch: string, part: number): Promise<StoredGroup | null> {
    const subject = this.d.subjects.doneGroup(batch, part)
    let p = this.lastGroups.get(subject)
    if (!p) {
      p = this.d.io.last(this.d.streams.done, subject, this.signal).then((m) => this.decoded(m, batch, part))
      this.lastGroups.set(subject, p)
    }
    return p
  }

  /** The group of a part of a batch at DONE sequence `seq` (null: expired, or not a group of that part). */
  private groupAt(batch: string, part: number, seq: number): Promise<StoredGroup | null> {
    let p = this.groupsAt.get(seq)
    if (!p) {
      const subject = this.d.subjects.doneGroup(batch, part)
      p = this.d.io.at(this.d.streams.done, seq, this.signal).then((m) => {
        if (m && m.subject !== subject) {
          this.onGarbage(seq, `a group of ${subject} names sequence ${seq}, which holds ${m.subject}`)
          return null
        }
        return this.decoded(m, batch, part)
      })
      this.groupsAt.set(seq, p)
    }
    return p
  }

  private decoded(m: StoredMessage | null, batch: string, part: number): StoredGroup | null {
    if (!m) return null
    const group = decodeGroup(m.data, batch, part)
    if (!group) this.onGarbage(m.seq, `not a group of final records of part ${part} of batch ${batch}`)
    return group ? { seq: m.seq, group } : null
  }
}
