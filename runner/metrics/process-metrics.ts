/**
 * The part of bosun's Prometheus metrics every process has: its own prom-client Registry (never the
 * global one, so tests can build several apps in one process), Node's default process metrics, the
 * ZooKeeper and NATS connection gauges, and the text exposition. api-metrics.ts and
 * worker-metrics.ts add what each kind of process knows. Values read at scrape time are gauges with
 * `collect()` callbacks: they cost nothing between scrapes. Names and labels: README "Metrics".
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'

/** Histogram buckets in seconds. */
export const BUCKETS = Object.freeze({
  /** A job attempt's run time: functions run from milliseconds to hours. */
  jobDuration: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  /** Submission to start (includes `delayMs`). */
  queueWait: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
  /** No boss dispatching: milliseconds after a resign, about a session timeout after a crash. */
  failoverGap: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60],
  /** HTTP request handling (a `?wait=` request is held up to API_MAX_WAIT_MS). */
  http: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
})

/** A NATS round trip measured at scrape time gives up after this long (the gauge is NaN then). */
const RTT_TIMEOUT_MS = 1000

/** What a process reads its connection gauges from (all cheap; read at scrape time). */
export interface ConnectionSources {
  /** ZooKeeper session connected and confirmed lately. */
  zkConnected(): boolean
  natsConnected(): boolean
  /** Round trip of the last answered ZooKeeper request or probe, in ms (undefined: none yet). */
  zkRoundTripMs(): number | undefined
  /** One NATS round trip (PING/PONG to the server), in ms. */
  natsRoundTripMs(): Promise<number>
}

export interface ProcessMetricsOptions {
  /** Connection gauges; absent → not exported. */
  connections?: ConnectionSources
  /** Node's default process metrics (CPU, memory, event loop lag, GC…). @defaultValue true */
  defaultMetrics?: boolean
}

/** The connection sources of a runtime node (runner/node.ts), structurally. */
export function nodeConnections(node: {
  zkConnected(): boolean
  session: { roundTripMs: number | undefined }
  transport: { connected: boolean }
  nc: { rtt(): Promise<number> }
}): ConnectionSources {
  return {
    zkConnected: () => node.zkConnected(),
    natsConnected: () => node.transport.connected,
    zkRoundTripMs: () => node.session.roundTripMs,
    natsRoundTripMs: () => node.nc.rtt(),
  }
}

const seconds = (ms: number | undefined): number => (ms === undefined || !Number.isFinite(ms) ? NaN : ms / 1000)

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

export class ProcessMetrics {
  /** This process's registry: everything it exports, nothing else. */
  readonly registry = new Registry()

  constructor(opts: ProcessMetricsOptions = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry })
    const c = opts.connections
    if (c) this.connectionGauges(c)
  }

  /** The Content-Type of `text()` (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType
  }

  /** Every metric in the Prometheus text format (runs the collect callbacks). */
  text(): Promise<string> {
    return this.registry.metrics()
  }

  private connectionGauges(c: ConnectionSources): void {
    const registers = [this.registry]
    new Gauge({
      name: 'bosun_zookeeper_connected',
      help: '1 while the ZooKeeper session is connected and confirmed lately, else 0',
      registers,
      collect() {
        this.set(c.zkConnected() ? 1 : 0)
      },
    })
    new Gauge({
      name: 'bosun_nats_connected',
      help: '1 while the NATS connection is up, else 0',
      registers,
      collect() {
        this.set(c.natsConnected() ? 1 : 0)
      },
    })
    new Gauge({
      name: 'bosun_zookeeper_rtt_seconds',
      help: 'Round trip of the last answered ZooKeeper request or liveness probe (NaN before the first)',
      registers,
      collect() {
        this.set(seconds(c.zkRoundTripMs()))
      },
    })
    new Gauge({
      name: 'bosun_nats_rtt_seconds',
      help: 'NATS round trip (PING/PONG) measured at scrape time (NaN when disconnected or over 1 s)',
      registers,
      async collect() {
        const ms = c.natsConnected()
          ? await within(c.natsRoundTripMs(), RTT_TIMEOUT_MS).catch(() => undefined)
          : undefined
        this.set(seconds(ms))
      },
    })
  }
}
