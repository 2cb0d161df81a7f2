/**
 * The boss's view of the workers: who advertises which functions with what capacity (from the
 * cached registry), and which jobs it has assigned to each. Picks the least-loaded worker with a
 * free slot for a function.
 */
import type { ServiceEntry } from '../../runner/index.js'

export interface FleetWorker {
  readonly id: string
  readonly address: string
  functions: Set<string>
  capacity: number
  /** Not taking work (refused with 'draining'); cleared when its registration changes. */
  paused: boolean
}

function parseMeta(entry: ServiceEntry): { functions: string[]; capacity: number } | undefined {
  const { functions, capacity } = entry.meta as { functions?: unknown; capacity?: unknown }
  if (!Array.isArray(functions) || !functions.every((f) => typeof f === 'string')) return undefined
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) return undefined
  return { functions, capacity }
}

export class Fleet {
  private readonly workers = new Map<string, FleetWorker>()
  /** Assignments survive a worker's registration vanishing (the node may still be alive, draining). */
  private readonly assigned = new Map<string, Set<string>>()

  /** Replace the set of workers that accept jobs (registry 'worker' entries). Returns true if any capacity appeared. */
  setWorkers(entries: ServiceEntry[]): boolean {
    const seen = new Set<string>()
    let grew = false
    for (const e of entries) {
      const meta = parseMeta(e)
      if (!meta) continue
      seen.add(e.id)
      const existing = this.workers.get(e.id)
      if (!existing) grew = true
      this.workers.set(e.id, { id: e.id, address: e.address, functions: new Set(meta.functions), capacity: meta.capacity, paused: false })
    }
    for (const id of [...this.workers.keys()]) if (!seen.has(id)) this.workers.delete(id)
    return grew
  }

  get(id: string): FleetWorker | undefined {
    return this.workers.get(id)
  }

  list(): FleetWorker[] {
    return [...this.workers.values()]
  }

  /** Every function some accepting worker can run. */
  functions(): Set<string> {
    const out = new Set<string>()
    for (const w of this.workers.values()) for (const f of w.functions) out.add(f)
    return out
  }

  load(id: string): number {
    return this.assigned.get(id)?.size ?? 0
  }

  jobsOn(id: string): string[] {
    return [...(this.assigned.get(id) ?? [])]
  }

  /** Ids of workers (or gone nodes) that hold assignments. */
  holders(): string[] {
    return [...this.assigned.keys()]
  }

  /** The least-loaded accepting worker that runs `fn` and has a free slot. */
  pick(fn: string): FleetWorker | undefined {
    let best: FleetWorker | undefined
    let bestLoad = Infinity
    for (const w of this.workers.values()) {
      if (w.paused || !w.functions.has(fn)) continue
      const load = this.load(w.id)
      if (load >= w.capacity) continue
      const ratio = load / w.capacity
      if (ratio < bestLoad) {
        best = w
        bestLoad = ratio
      }
    }
    return best
  }

  assign(workerId: string, jobId: string): void {
    let set = this.assigned.get(workerId)
    if (!set) {
      set = new Set()
      this.assigned.set(workerId, set)
    }
    set.add(jobId)
  }

  release(workerId: string, jobId: string): void {
    const set = this.assigned.get(workerId)
    if (!set) return
    set.delete(jobId)
    if (set.size === 0) this.assigned.delete(workerId)
  }

  /** Forget every assignment of a worker (its node is gone); returns the job ids it held. */
  releaseAll(workerId: string): string[] {
    const jobs = this.jobsOn(workerId)
    this.assigned.delete(workerId)
    return jobs
  }

  runningCounts(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [id, set] of this.assigned) out[id] = set.size
    return out
  }
}
