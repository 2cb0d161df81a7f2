/**
 * The API process's Prometheus metrics: HTTP request durations by route pattern and status, jobs
 * submitted per function, and the cluster gauges the API already knows without extra work — workers
 * and the boss's epoch from its runtime node's watch-kept caches, queued and running jobs from the
 * boss's periodic load reports. Served on `GET /metrics` (api/routes/metrics.ts).
 */
import { Counter, Gauge, Histogram } from 'prom-client'
import { BoundedLabel, MAX_FUNCTION_LABELS, OTHER } from './bounded-label.js'
import { BUCKETS, ProcessMetrics, type ProcessMetricsOptions } from './process-metrics.js'
import { LeadershipMetrics } from './leadership-metrics.js'

/** Where the cluster gauges come from (read at scrape time). */
export interface ApiClusterSources {
  /** Live workers (registered in the 'worker' service). */
  workers(): Promise<number>
  /** The elected boss's fencing epoch, undefined while none is elected. */
  bossEpoch(): Promise<number | undefined>
  /** The boss's last load report, undefined before the first. */
  bossLoad(): { queued: number; running: number } | undefined
}

export interface ApiMetricsOptions extends ProcessMetricsOptions {
  /** Cluster gauges; absent → not exported (e.g. an app built for tests). */
  cluster?: ApiClusterSources
}

/** The `route` label of a request no route matched (404s of any URL): never the raw URL. */
export const UNMATCHED_ROUTE = 'unmatched'

const HTTP_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

type HttpLabel = 'method' | 'route' | 'status'
type HttpChild = Histogram.Internal<HttpLabel>

export class ApiMetrics extends ProcessMetrics {
  /** Leader changes and failover gaps, fed from the cluster events (api/main.ts). */
  readonly leadership: LeadershipMetrics
  private readonly submittedTotal: Counter<'function'>
  private readonly submittedBy = new Map<string, Counter.Internal>()
  /** Submits are counted after the service accepted them: the names are functions some worker advertises. */
  private readonly functions = new BoundedLabel({ max: MAX_FUNCTION_LABELS })
  private readonly http: Histogram<HttpLabel>
  /** route → method → status → child (no label object built per request). */
  private readonly httpBy = new Map<string, Map<string, Map<number, HttpChild>>>()

  constructor(opts: ApiMetricsOptions = {}) {
    super(opts)
    const registers = [this.registry]
    this.submittedTotal = new Counter({
      name: 'bosun_jobs_submitted_total',
      help: 'Jobs accepted by this API (202/200), per function',
      labelNames: ['function'],
      registers,
    })
    this.http = new Histogram({
      name: 'bosun_http_request_duration_seconds',
      help: `HTTP requests by method, route pattern (${UNMATCHED_ROUTE} when none matched) and status`,
      labelNames: ['method', 'route', 'status'],
      buckets: BUCKETS.http,
      registers,
    })
    this.leadership = new LeadershipMetrics(this.registry)
    if (opts.cluster) this.clusterGauges(opts.cluster)
  }

  /** `n` jobs of `fn` were accepted. */
  submitted(fn: string, n = 1): void {
    const label = this.functions.value(fn)
    let child = this.submittedBy.get(label)
    if (child === undefined) {
      child = this.submittedTotal.labels(label)
      this.submittedBy.set(label, child)
    }
    child.inc(n)
  }

  /** One answered request: `route` is the matched route pattern (e.g. `/jobs/:id`), undefined when none. */
  httpRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    const r = route ?? UNMATCHED_ROUTE
    let byMethod = this.httpBy.get(r)
    if (byMethod === undefined) this.httpBy.set(r, (byMethod = new Map<string, Map<number, HttpChild>>()))
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map<number, HttpChild>()))
    let child = byStatus.get(status)
    if (child === undefined) {
      const m = HTTP_METHODS.has(method) ? method : OTHER
      child = this.http.labels({ method: m, route: r, status: String(status) })
      byStatus.set(status, child)
    }
    child.observe(seconds)
  }

  private clusterGauges(c: ApiClusterSources): void {
    const registers = [this.registry]
    new Gauge({
      name: 'bosun_workers',
      help: 'Live workers (registered to run jobs; the boss is not one)',
      registers,
      async collect() {
        this.set(await c.workers())
      },
    })
    new Gauge({
      name: 'bosun_boss_epoch',
      help: "The elected boss's fencing epoch (0 while none is elected)",
      registers,
      async collect() {
        this.set((await c.bossEpoch()) ?? 0)
      },
    })
    new Gauge({
      name: 'bosun_jobs_queued',
      help: "Jobs waiting to run, cluster-wide, from the boss's last load report",
      registers,
      collect() {
        this.set(c.bossLoad()?.queued ?? 0)
      },
    })
    new Gauge({
      name: 'bosun_jobs_running',
      help: "Jobs running, cluster-wide, from the boss's last load report",
      registers,
      collect() {
        this.set(c.bossLoad()?.running ?? 0)
      },
    })
  }
}
