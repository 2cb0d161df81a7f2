/** `node dist/api/main.js` — the Procfile's `api` process: a stateless HTTP front. */
// First: V8 flags must be set before the code they tune is loaded.
import '../runner/v8-tuning.js'
import {
  ApiMetrics,
  bossStatsSubject,
  type BosunNodeImpl,
  ClusterEventPublisher,
  createLogger,
  loadRuntimeConfig,
  type Logger,
  nodeConnections,
  runMain,
  type RuntimeConfig,
  startNode,
  watchConnections,
} from '../runner/index.js'
import { JobStreams } from '../jobs/streams/index.js'
import { buildApp, type BosunApp } from './app.js'
import { loadApiConfig, type ApiConfig } from './config.js'
import { natsEventWaiter } from './events.js'
import { Backpressure } from './backpressure.js'
import { ClusterJobService } from './job-service.js'
import { ScheduleService } from './schedule-service.js'
import { ScheduleStore } from '../jobs/schedules/store.js'
import { LimitsStore } from '../jobs/limits-store.js'
import { FunctionService } from './function-service.js'
import { CallbackStore } from '../jobs/callbacks/store.js'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { StreamClusterEvents } from './cluster-events.js'
import { watchLeadership } from './leadership-watch.js'
import { BOSS, parseBossStatusReply, WORKER_SERVICE } from '../jobs/protocol.js'

interface Config {
  runtime: RuntimeConfig
  api: ApiConfig
}

class ApiProcess {
  private stopping: Promise<void> | undefined
  constructor(
    private readonly app: BosunApp,
    private readonly node: BosunNodeImpl,
    private readonly store: JobStreams,
    private readonly events: ClusterEventPublisher,
    private readonly unwatchConnections: () => void,
  ) {}

  static async start(cfg: Config, logger: Logger): Promise<ApiProcess> {
    const node = await startNode(cfg.runtime, { role: 'api', logger, meta: { role: 'api' } })
    try {
      const store = await JobStreams.open({ nc: node.nc, cluster: cfg.runtime.cluster, logger: node.logger })
      const group = store.groupCommitter()
      const callbackStore = await CallbackStore.open({ nc: node.nc, cluster: cfg.runtime.cluster, logger: node.logger })
      const backpressure = new Backpressure(cfg.api.maxQueuedJobs)
      const loadLog = node.logger.child({ component: 'boss-load' })
      node.transport.listen(bossStatsSubject(cfg.runtime.cluster), (envelope) => {
        try {
          backpressure.observe(parseBossStatusReply(envelope.body))
        } catch (err) {
          loadLog.warn({ err, from: envelope.from }, 'a boss load report that is not one: dropped')
        }
      })
      const service = new ClusterJobService({
        backpressure,
        cluster: cfg.runtime.cluster,
        store: {
          commit: (job, key, createdAt) => group.add(job, key, createdAt),
          plan: (jobs, newBatchId) => store.submitter.plan(jobs, newBatchId),
          publish: (plan, jobs, createdAt) => store.submitter.publish(plan, jobs, createdAt),
          claim: (key, jobId) => store.submitter.claim(key, jobId),
          repoint: (key, abandoned, jobId) => store.submitter.repoint(key, abandoned, jobId),
          abandon: (jobIds) => store.submitter.abandonedClaims.add(jobIds),
          abandoned: (jobId) => store.submitter.abandonedClaims.has(jobId),
          get: (id) => store.reader.get(id),
          live: (id) => store.live.read(id),
          list: (q) => store.reader.list(q),
          retryAnswer: (rid) => store.submitter.retryAnswer(rid),
          keepRetryAnswer: (rid, answer) => store.submitter.keepRetryAnswer(rid, answer),
        },
        registry: node.registry,
        election: node.election,
        transport: node.transport,
        events: natsEventWaiter(node.transport, cfg.runtime.cluster, node.logger),
        noBossWaitMs: cfg.api.noBossWaitMs,
        health: () => ({ zk: node.zkConnected(), nats: node.transport.connected }),
        callbacks: { allow: cfg.api.callbackAllow, status: (id) => callbackStore.status(id) },
        logger: node.logger.child({ component: 'job-service' }),
      })
      const metrics = cfg.api.metrics
        ? new ApiMetrics({
            connections: nodeConnections(node),
            cluster: {
              workers: async () => (await node.registry.getCapable(WORKER_SERVICE)).length,
              bossEpoch: async () => (await node.election.whereisGlobal(BOSS))?.epoch,
              bossLoad: () => backpressure.latest(),
            },
          })
        : undefined
      const events = new ClusterEventPublisher({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        source: { id: node.id, host: node.host, pid: node.pid, role: 'api' },
        retentionMs: cfg.runtime.eventRetentionMs,
        logger: node.logger,
      })
      const unwatch = watchConnections(node, events)
      const eventsLog = node.logger.child({ component: 'cluster-events' })
      const clusterEvents = new StreamClusterEvents(
        jetstream(node.nc),
        await jetstreamManager(node.nc),
        cfg.runtime.cluster,
        eventsLog,
      )
      const current = await node.election.whereisGlobal(BOSS)
      // the leadership metrics are all the watch feeds: none without metrics
      const leadershipWatch = metrics
        ? watchLeadership(clusterEvents, metrics.leadership, current?.epoch ?? 0, eventsLog)
        : undefined
      const schedules = await ScheduleStore.open({ nc: node.nc, cluster: cfg.runtime.cluster, logger: node.logger })
      const limits = await LimitsStore.open({ nc: node.nc, cluster: cfg.runtime.cluster, logger: node.logger })
      const functions = new FunctionService({
        workers: () => node.registry.getCapable(WORKER_SERVICE),
        running: () => backpressure.runningByFunction(),
        getOverride: (fn) => limits.get(fn),
        listOverrides: () => limits.list(),
        putOverride: (fn, o) => limits.put(fn, o),
      })
      const app = buildApp({
        service,
        schedules: new ScheduleService(schedules),
        functions,
        metrics: metrics ?? false,
        events: clusterEvents,
        logger: node.logger,
        bodyLimitBytes: cfg.api.bodyLimitBytes,
        apiTokens: cfg.api.apiTokens,
        maxWaitMs: cfg.api.maxWaitMs,
        requestTimeoutMs: cfg.api.requestTimeoutMs,
        keepAliveTimeoutMs: cfg.api.keepAliveTimeoutMs,
        ...(cfg.api.rateLimit ? { rateLimit: cfg.api.rateLimit } : {}),
      })
      await app.listen({ port: cfg.api.port, host: cfg.api.host })
      node.logger.info({ url: `http://${cfg.api.host}:${cfg.api.port}` }, 'api listening')
      return new ApiProcess(app, node, store, events, () => {
        unwatch()
        void leadershipWatch?.stop()
      })
    } catch (err) {
      await node.close()
      throw err
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.app.close().catch(() => undefined)
      this.unwatchConnections()
      await this.events.close(500)
      await this.store.close().catch(() => undefined)
      await this.node.close()
    })()
    return this.stopping
  }
}

await runMain(
  'api',
  () => ({ runtime: loadRuntimeConfig(), api: loadApiConfig() }),
  (cfg) => createLogger({ level: cfg.runtime.logLevel, pretty: cfg.runtime.logPretty, name: 'bosun-api' }),
  (cfg, logger) => ApiProcess.start(cfg, logger),
)
