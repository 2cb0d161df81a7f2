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
import { isObject } from '../parse.js'
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

/** The version-2 layout of `group` (its finals' ids must be of its batch). */
export function compactGroup(group: FinalGroup): CompactGroup {
  const [first, ...others] = group.finals as unknown as Array<Record<string, unknown>>
  const common: CompactGroup['common'] = {}
  if (first)
    for (const key of Object.keys(first)) {
      const v = first[key]
      if (key === 'id' || key === 'i' || !isScalar(v)) continue
      if (others.every((f) => Object.prototype.hasOwnProperty.call(f, key) && f[key] === v)) common[key] = v
    }
  const finals = group.finals.map((job) => {
    const f: Record<string, unknown> & { i: number } = { i: parseJobId(job.id)?.index ?? -1 }
    for (const [key, v] of Object.entries(job))
      if (key !== 'id' && v !== undefined && !Object.prototype.hasOwnProperty.call(common, key)) f[key] = v
    return f
  })
  return { v: 2, batch: group.batch, part: group.part, epoch: group.epoch, common, finals, earlier: group.earlier }
}

/**
 * A stored group object in version 1's shape: version 1 as it is, version 2 expanded (each final
 * `common` plus its own fields, its id from its index); null when a version-2 group is malformed.
 * Anything else is returned unchanged, for the caller's validation to refuse.
 */
export function expandGroup(v: unknown): unknown {
  if (!isObject(v) || v.v !== 2) return v
  const { batch, common, finals } = v
  if (typeof batch !== 'string' || !isObject(common) || !Array.isArray(finals)) return null
  if (!Object.values(common).every(isScalar)) return null
  const jobs: Job[] = []
  for (const f of finals as unknown[]) {
    if (!isObject(f) || !Number.isInteger(f.i) || (f.i as number) < 0 || (f.i as number) >= MAX_BATCH_JOBS) return null
    const { i, ...own } = f
    jobs.push(Object.assign({}, common, own, { id: jobIdOf(batch, i as number) }) as unknown as Job)
  }
  return { v: 1, batch, part: v.part, epoch: v.epoch, finals: jobs, earlier: v.earlier }
}
