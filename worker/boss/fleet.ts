/**
 * The boss's view of the workers: who advertises which functions with what capacity (from the
 * cached registry; capacity capped so a bogus registration cannot soak up the queue), which jobs
 * it has assigned to each, and which are backed off because they did not answer on NATS. Picks
 * the least-loaded reachable worker with a free slot for a function; when every one is full, a
 * worker whose jobs have been short gets jobs ahead, up to its advertised prefetch (README
 * "Prefetch"). Also gathers the limits the workers' function modules declare (the strictest where
 * workers disagree: README "Limits").
 */
import type { Logger, ServiceEntry } from '../../runner/index.js'
import { sameLimits, stricterLimits, type FunctionLimits } from '../../jobs/limits.js'
import { parseWorkerMeta } from '../../jobs/worker-advert.js'

export interface FleetWorker {
  readonly id: string
  readonly address: string
  functions: Set<string>
  capacity: number
  /** Jobs it takes beyond `capacity`, started as its slots free (WORKER_PREFETCH). */
  prefetch: number
  /** Moving average of its attempts' run times, ms (undefined: none seen yet this term). */
  runMs: number | undefined
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
/**
 * A worker gets jobs ahead of a free slot only while its attempts' average run time is at most this,
 * and only as many as its slots run in this long (README "Prefetch"): a job held ahead then waits
 * about that long for a slot, and a long job never queues behind another on a busy worker while
 * another worker frees up.
 */
export const PREFETCH_MAX_RUN_MS = 50
/** Weight of the newest attempt in a worker's average run time. */
const RUN_MS_WEIGHT = 0.2

export class Fleet {
  private readonly workers = new Map<string, FleetWorker>()
  /** Assignments survive a worker's registration vanishing (the node may still be alive, draining). */
  private readonly assigned = new Map<string, Map<string, number>>()
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
        prefetch: meta.prefetch,
        runMs: existing?.runMs,
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
    return [...(this.assigned.get(id)?.keys() ?? [])]
  }

  holds(workerId: string, jobId: string): boolean {
    return this.assigned.get(workerId)?.has(jobId) ?? false
  }

  /** Ids of workers (or gone nodes) that hold assignments. */
  holders(): string[] {
    return [...this.assigned.keys()]
  }

  /**
   * The least-loaded accepting, reachable worker that runs `fn` and has a free slot — or, when none
   * has and `ahead` allows it, room for a job ahead (a worker with a free slot always wins: its load is
   * below 1). A rate-limited function's jobs never go ahead: their starts are counted at dispatch.
   */
  pick(fn: string, now = Date.now(), ahead = true): FleetWorker | undefined {
    let best: FleetWorker | undefined
    let bestLoad = Infinity
    for (const w of this.workers.values()) {
      if (w.paused || w.backoffUntil > now || !w.functions.has(fn)) continue
      const load = this.load(w.id)
      if (load >= w.capacity && (!ahead || load >= w.capacity + this.ahead(w, now))) continue
      const ratio = load / w.capacity
      if (ratio < bestLoad) {
        best = w
        bestLoad = ratio
      }
    }
    return best
  }

  /**
   * Jobs `w` may hold ahead of a free slot now: while its attempts have been short and none of the
   * jobs it holds has been there longer than that (a long job that just started holds no one up
   * behind it, nor does a job a higher priority would overtake wait there for long), its prefetch or
   * what its slots run in PREFETCH_MAX_RUN_MS at its average run time, whichever is less.
   */
  private ahead(w: FleetWorker, now: number): number {
    if (w.prefetch === 0 || w.runMs === undefined || w.runMs > PREFETCH_MAX_RUN_MS) return 0
    const oldest = this.assigned.get(w.id)?.values().next().value
    if (oldest !== undefined && now - oldest > PREFETCH_MAX_RUN_MS) return 0
    return Math.min(w.prefetch, Math.floor((w.capacity * PREFETCH_MAX_RUN_MS) / Math.max(w.runMs, 1)))
  }

  /** An attempt ran on `workerId` from `startedAt` to `finishedAt` (ISO times; bad ones are ignored). */
  ran(workerId: string, startedAt: string, finishedAt: string): void {
    const w = this.workers.get(workerId)
    const ms = Date.parse(finishedAt) - Date.parse(startedAt)
    if (!w || !(ms >= 0)) return
    w.runMs = w.runMs === undefined ? ms : w.runMs + RUN_MS_WEIGHT * (ms - w.runMs)
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

  /** `jobId` is on `workerId` from now (kept in assignment order: the first is the oldest). */
  assign(workerId: string, jobId: string): void {
    let jobs = this.assigned.get(workerId)
    if (!jobs) {
      jobs = new Map()
      this.assigned.set(workerId, jobs)
    }
    if (!jobs.has(jobId)) jobs.set(jobId, Date.now())
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
