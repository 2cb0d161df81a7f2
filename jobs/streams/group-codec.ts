/**
 * How a group of final records (final-groups.ts) is laid out in its DONE message. Version 2 stores
 * what all the group's finals share once: every field whose value is the same scalar in each of them
 * (function, state, attempts, priority, timeoutMs, createdAt, epoch, worker, … as they happen to be)
 * goes in `common`, and each final keeps its job index (`i`: its id is the batch's id and that index)
 * and the rest. A group of no-op jobs' finals is ≈ 2.7× smaller than in version 1's whole records
 * (what is left is mostly each job's own times), and groups were two thirds of the bytes the boss
 * writes, whose socket writes were its largest CPU cost (README "Benchmarks"). Readers take both
 * versions: `expandGroup` turns version 2 back into version 1's shape, which final-groups.ts
 * validates as before.
 */
import type { Job } from '../model.js'
import { attemptEntry, type AttemptEntry } from '../attempts.js'
import { isObject, isSafeCount } from '../parse.js'
import { jobIdOf, MAX_BATCH_JOBS, parseJobId } from './layout.js'
import type { FinalGroup } from './final-groups.js'

/** A group as version 2 stores it. */
export interface CompactGroup {
  v: 2
  batch: string
  part: number
  epoch: number
  /** The fields every final holds with the same scalar value. */
  common: Record<string, string | number | boolean | null>
  /** Each final: its job index and the fields not in `common`. */
  finals: Array<Record<string, unknown> & { i: number }>
  earlier: FinalGroup['earlier']
}

function isScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

/**
 * A final's one history entry when it is what the record itself says of its only attempt (run,
 * attempt, worker, times and outcome: attempts.ts `attemptEntry`), dispatched in epoch `epoch`.
 */
function derivedHistory(job: Record<string, unknown>, epoch: number): AttemptEntry[] {
  const entry = attemptEntry({
    run: job.run as number | undefined,
    attempt: job.attempts as number,
    worker: job.worker as string | undefined,
    epoch,
    startedAt: job.startedAt as string | undefined,
    finishedAt: job.finishedAt as string,
    outcome: job.state as AttemptEntry['outcome'],
    error: job.error as AttemptEntry['error'],
  })
  return [entry]
}

/** Two history entries alike as JSON: the same keys in the same order, the same values. */
function sameEntry(a: AttemptEntry, b: AttemptEntry): boolean {
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (let n = 0; n < ka.length; n++) {
    const key = ka[n]! as keyof AttemptEntry
    if (key !== kb[n]) return false
    const x = a[key]
    const y = b[key]
    if (x !== y && (typeof x !== 'object' || JSON.stringify(x) !== JSON.stringify(y))) return false
  }
  return true
}

/**
 * A final's own layout before `common` is taken out: its index, and `h` (the dispatching epoch) in
 * place of a history that is exactly the one entry the record implies — the most frequent case and
 * ≈ 190 bytes a job — compared key by key in order, so decoding gives back the same entry.
 */
function ownFields(job: Job): Record<string, unknown> & { i: number } {
  const f: Record<string, unknown> & { i: number } = { i: parseJobId(job.id)?.index ?? -1 }
  const only = job.history?.length === 1 ? job.history[0] : undefined
  const implied =
    only !== undefined && sameEntry(derivedHistory(job as unknown as Record<string, unknown>, only.epoch)[0]!, only)
  for (const [key, v] of Object.entries(job)) {
    if (key === 'id' || v === undefined) continue
    if (key === 'history' && implied) f.h = only.epoch
    else f[key] = v
  }
  return f
}

/** The version-2 layout of `group` (its finals' ids must be of its batch). */
export function compactGroup(group: FinalGroup): CompactGroup {
  const own = group.finals.map(ownFields)
  const [first, ...others] = own
  const common: CompactGroup['common'] = {}
  if (first)
    for (const key of Object.keys(first)) {
      const v = first[key]
      if (key === 'i' || !isScalar(v)) continue
      if (others.every((f) => Object.prototype.hasOwnProperty.call(f, key) && f[key] === v)) common[key] = v
    }
  const finals = own.map((f) => {
    for (const key of Object.keys(common)) delete f[key]
    return f
  })
  return { v: 2, batch: group.batch, part: group.part, epoch: group.epoch, common, finals, earlier: group.earlier }
}

/**
 * A stored group object in version 1's shape: version 1 as it is, version 2 expanded (each final
 * `common` plus its own fields, its id from its index, its history from `h`); null when a version-2
 * group is malformed. Anything else is returned unchanged, for the caller's validation to refuse.
 */
export function expandGroup(v: unknown): unknown {
  if (!isObject(v) || v.v !== 2) return v
  const { batch, common, finals } = v
  if (typeof batch !== 'string' || !isObject(common) || !Array.isArray(finals)) return null
  if (!Object.values(common).every(isScalar)) return null
  const jobs: Job[] = []
  for (const f of finals as unknown[]) {
    if (!isObject(f) || !Number.isInteger(f.i) || (f.i as number) < 0 || (f.i as number) >= MAX_BATCH_JOBS) return null
    const { i, h, ...rest } = Object.assign({}, common, f)
    const job: Record<string, unknown> = Object.assign(rest, { id: jobIdOf(batch, i as number) })
    if (h !== undefined) {
      if (!isSafeCount(h) || typeof job.finishedAt !== 'string' || 'history' in job) return null
      job.history = derivedHistory(job, h)
    }
    jobs.push(job as unknown as Job)
  }
  return { v: 1, batch, part: v.part, epoch: v.epoch, finals: jobs, earlier: v.earlier }
}
