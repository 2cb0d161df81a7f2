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
 * The dispatching epoch of a final whose history is exactly the one entry its record implies (the
 * most frequent case, ≈ 190 bytes a job), compared key by key in order so that decoding gives back
 * the same entry; undefined for any other history.
 */
function impliedEpoch(job: Job): number | undefined {
  const h = job.history
  if (h?.length !== 1) return undefined
  const only = h[0]!
  return sameEntry(derivedHistory(job as unknown as Record<string, unknown>, only.epoch)[0]!, only)
    ? only.epoch
    : undefined
}

/** The version-2 layout of `group` (its finals' ids must be of its batch). */
export function compactGroup(group: FinalGroup): CompactGroup {
  const jobs = group.finals as unknown as Array<Record<string, unknown>>
  const implied = group.finals.map(impliedEpoch)
  const common: CompactGroup['common'] = {}
  const first = jobs[0]
  if (first) {
    for (const key of Object.keys(first)) {
      const v = first[key]
      if (key === 'id' || key === 'history' || key === 'i' || key === 'h' || !isScalar(v)) continue
      let same = true
      for (let n = 1; n < jobs.length && same; n++) same = jobs[n]![key] === v
      if (same) common[key] = v
    }
    const h = implied[0]
    if (h !== undefined && implied.every((x) => x === h)) common.h = h
  }
  // Each final built once, without deletes (a deleted key turns a V8 object into a slow dictionary).
  const finals = jobs.map((job, n) => {
    const f: Record<string, unknown> & { i: number } = { i: parseJobId(job.id)?.index ?? -1 }
    for (const key of Object.keys(job)) {
      const v = job[key]
      if (key === 'id' || key === 'i' || key === 'h' || v === undefined || common[key] !== undefined) continue
      if (key === 'history' && implied[n] !== undefined) {
        if (common.h === undefined) f.h = implied[n]
      } else f[key] = v
    }
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
  if (!Object.values(common).every(isScalar) || Object.hasOwn(common, '__proto__')) return null
  const jobs: Job[] = []
  for (const f of finals as unknown[]) {
    if (!isObject(f) || !Number.isInteger(f.i) || (f.i as number) < 0 || (f.i as number) >= MAX_BATCH_JOBS) return null
    // Copied with Object.assign below: an own "__proto__" would set the copy's prototype, not a field.
    if (Object.hasOwn(f, '__proto__')) return null
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
