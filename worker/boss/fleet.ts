/**
 * The boss's view of the workers: who advertises which functions with what capacity (from the
 * cached registry; capacity capped so a bogus registration cannot soak up the queue), which jobs
 * it has assigned to each, and which are backed off because they did not answer on NATS. Picks
 * the least-loaded reachable worker with a free slot for a function. Also gathers the limits the
 * workers' function modules declare (the strictest where workers disagree: README "Limits").
 */
import type { Logger, ServiceEntry } from '../../runner/index.js'
import { sameLimits, stricterLimits, type FunctionLimits } from '../../jobs/limits.js'
import { parseWorkerMeta } from '../../jobs/worker-advert.js'

export interface FleetWorker {
  readonly id: string
  readonly address: string
  functions: Set<string>
  capacity: number
  /** Not taking work (refused with 'draining'); cleared when its registration changes. */
  paused: boolean
  /** Epoch ms before which it gets no dispatch (it did not answer on NATS). */
  backoffUntil: number
  /** Consecutive failures to reach it; the backoff doubles with each. */
  failures: number
}

/** First backoff of a worker that did not answer; doubles up to {@link MAX_BACKOFF_MS}. */
export const MIN_BACKOFF_MS = 100
export const MAX_BACKOFF_MS = 30_000

export class Fleet {
  private readonly workers = new Map<string, FleetWorker>()
  /** Assignments survive a worker's registration vanishing (the node may still be alive, draining). */
  private readonly assigned = new Map<string, Set<string>>()
  private declared = new Map<string, FunctionLimits>()

  constructor(
    private readonly log?: Logger,
    /** The declared limits changed (a worker with another version of a module came or went). */
    private readonly onDeclaredChange: () => void = () => undefined,
  ) {}

  /** The limits each function's modules declare, the strictest across workers. */
  declaredLimits(): ReadonlyMap<string, FunctionLimits> {
    return this.declared
  }

  /** Replace the set of workers that accept jobs (registry 'worker' entries). */
  setWorkers(entries: ServiceEntry[]): void {
    const seen = new Set<string>()
    const declared = new Map<string, FunctionLimits>()
    for (const e of entries) {
      const meta = parseWorkerMeta(e.meta)
      if (!meta) continue
      seen.add(e.id)
      if (meta.badLimits.length > 0)
        this.log?.warn(
          { worker: e.id, functions: meta.badLimits },
          'a worker advertises limits that do not parse: ignored',
        )
      for (const [fn, l] of Object.entries(meta.limits)) {
        const before = declared.get(fn)
        declared.set(fn, before ? stricterLimits(before, l) : l)
      }
      const existing = this.workers.get(e.id)
      const unchanged = existing !== undefined && existing.address === e.address && existing.capacity === meta.capacity
      this.workers.set(e.id, {
        id: e.id,
        address: e.address,
        functions: new Set(meta.functions),
        capacity: meta.capacity,
        paused: false,
        // A registration that did not change keeps its backoff (a flapping bogus entry stays backed off).
        backoffUntil: unchanged ? existing.backoffUntil : 0,
        failures: unchanged ? existing.failures : 0,
      })
    }
    for (const id of [...this.workers.keys()]) if (!seen.has(id)) this.workers.delete(id)
    const changed =
      declared.size !== this.declared.size || [...declared].some(([fn, l]) => !sameLimits(l, this.declared.get(fn)))
    this.declared = declared
    if (changed) this.onDeclaredChange()
  }

  get(id: string): FleetWorker | undefined {
    return this.workers.get(id)
  }

  list(): FleetWorker[] {
    return [...this.workers.values()]
  }

  load(id: string): number {
    return this.assigned.get(id)?.size ?? 0
  }

  jobsOn(id: string): string[] {
    return [...(this.assigned.get(id) ?? [])]
  }

  holds(workerId: string, jobId: string): boolean {
    return this.assigned.get(workerId)?.has(jobId) ?? false
  }

  /** Ids of workers (or gone nodes) that hold assignments. */
  holders(): string[] {
    return [...this.assigned.keys()]
  }

  /** The least-loaded accepting, reachable worker that runs `fn` and has a free slot. */
  pick(fn: string, now = Date.now()): FleetWorker | undefined {
    let best: FleetWorker | undefined
    let bestLoad = Infinity
    for (const w of this.workers.values()) {
      if (w.paused || w.backoffUntil > now || !w.functions.has(fn)) continue
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

  /** The earliest time a backed-off worker becomes pickable again (undefined: none is backed off). */
  nextBackoffEnd(now = Date.now()): number | undefined {
    let next: number | undefined
    for (const w of this.workers.values())
      if (w.backoffUntil > now && (next === undefined || w.backoffUntil < next)) next = w.backoffUntil
    return next
  }

  /** The worker did not answer on NATS: no dispatch to it for a while (doubling); returns the backoff in ms. */
  backOff(id: string, now = Date.now()): number {
    const w = this.workers.get(id)
    if (!w) return 0
    const ms = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** w.failures)
    w.failures++
    w.backoffUntil = now + ms
    return ms
  }

  /** The worker answered: dispatch to it again at once. */
  reachable(id: string): void {
    const w = this.workers.get(id)
    if (!w) return
    w.failures = 0
    w.backoffUntil = 0
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

  runningCounts(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [id, set] of this.assigned) out[id] = set.size
    return out
  }
}
