/**
 * A worker process: a candidate for the global "boss" role that runs jobs while it is not the boss.
 * Composes the runtime node, the function executor, the job store, the worker agent and the boss role,
 * and switches between the two roles as leadership comes and goes.
 */
import {
  bossStatsSubject,
  type BosunNodeImpl,
  ClusterEventPublisher,
  finishedJobsSubject,
  finishingJobsSubject,
  type LeaderInfo,
  type Logger,
  MetricsServer,
  nodeConnections,
  procSubject,
  startNode,
  watchConnections,
  WorkerMetrics,
} from '../runner/index.js'
import { WorkerAgent } from './agent/worker-agent.js'
import { LiveRecorder } from './agent/live-recorder.js'
import { BossRole } from './boss/boss-role.js'
import { finalAnnouncer, FinishedNotices } from './boss/finished-notices.js'
import { SHUTDOWN_BUDGET, type WorkerConfig } from './config.js'
import { createExecutor, type FunctionExecutor } from './executor/index.js'
import type { Job } from '../jobs/model.js'
import { assemble, JobStreams } from '../jobs/streams/index.js'
import { BOSS, MSG, WORKER_SERVICE } from '../jobs/protocol.js'
import type { FinishedBody } from '../jobs/finished-notice.js'
import type { WorkerMeta } from '../jobs/worker-advert.js'
import { RoleSwitch } from './role-switch.js'
import { laterDispatch } from './boss/takeover.js'
import { countFencedWrites } from './boss/fence-counting-store.js'
import { natsProbe, watchWorkerEvents, type WorkerEventWatch } from './worker-events.js'
import { RefusalReport } from './refusal-report.js'
import { ScheduleStore } from '../jobs/schedules/store.js'
import { scheduleRunner } from './boss/schedule-runner.js'
import { CallbackStore } from '../jobs/callbacks/store.js'
import { LimitsStore } from '../jobs/limits-store.js'
import { RateLedgerStore } from '../jobs/rate-ledger-store.js'
import { callbackRunner } from './boss/callback-runner.js'

export class WorkerProcess {
  private stopping: Promise<void> | undefined
  private readonly roles: RoleSwitch
  /** Prometheus metrics and their port (METRICS_PORT; undefined when off). */
  private metrics: WorkerMetrics | undefined
  private metricsServer: MetricsServer | undefined
  /** Cluster events this process sees (runner/events). */
  private events: ClusterEventPublisher | undefined
  private unwatchConnections: (() => void) | undefined
  /** Why the next deposition happens, when this process causes it (SIGTERM, a fenced write). */
  private depositionCause: string | undefined

  private constructor(
    readonly node: BosunNodeImpl,
    private readonly executor: FunctionExecutor,
    private readonly store: JobStreams,
    private readonly agent: WorkerAgent,
    private readonly boss: BossRole,
    private readonly cfg: WorkerConfig,
    private readonly log: Logger,
  ) {
    const registry = node.registry
    const election = node.election
    this.roles = new RoleSwitch({
      setAccepting: (accepting) => agent.setAccepting(accepting),
      registerWorker: () => registry.register(WORKER_SERVICE, node.transport.address, { ...this.workerMeta() }),
      unregisterWorker: () => registry.unregister(WORKER_SERVICE),
      startBoss: (leadership) => void boss.elected(leadership),
      stopBoss: () => boss.deposed(),
      resign: () => election.resign(BOSS),
      candidate: () =>
        election.registerCandidate(BOSS, node.transport.address, {
          onElected: (l) => {
            agent.observeEpoch(l.epoch)
            const boss = { id: node.id, host: node.host, pid: node.pid }
            this.events?.emit('boss.elected', { boss, sessionTimeoutMs: cfg.runtime.zk.sessionTimeoutMs }, l.epoch)
            this.roles.elected(l)
          },
          onDeposed: (reason, epoch) => {
            // A SIGTERM's deposition is told by doStop, before the term stops.
            if (this.boss.epoch !== undefined && this.depositionCause !== 'sigterm')
              this.events?.emit('boss.deposed', { reason: this.depositionCause ?? reason }, epoch)
            if (this.depositionCause !== 'sigterm') this.depositionCause = undefined
            this.roles.deposed(reason)
          },
        }),
      logger: log,
    })
  }

  static async start(cfg: WorkerConfig, logger: Logger): Promise<WorkerProcess> {
    const executor = await createExecutor({
      functionsDir: cfg.functionsDir,
      isolation: cfg.isolation,
      concurrency: cfg.concurrency,
      threads: cfg.threads,
      maxResultBytes: cfg.maxResultBytes,
      abortGraceMs: cfg.killGraceMs,
      logger,
    })
    let node: BosunNodeImpl | undefined
    try {
      const meta: WorkerMeta = advertised(executor, cfg.prefetch)
      node = await startNode(cfg.runtime, { role: 'worker', logger, meta: { ...meta } })
      const store = await JobStreams.open({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        replicas: cfg.storeReplicas,
        retentionMs: cfg.boss.retentionMs,
        logger: node.logger,
      })
      const schedules = await ScheduleStore.open({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        replicas: cfg.storeReplicas,
        logger: node.logger,
      })
      const limits = await LimitsStore.open({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        replicas: cfg.storeReplicas,
        logger: node.logger,
      })
      const rates = await RateLedgerStore.open({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        replicas: cfg.storeReplicas,
        logger: node.logger,
      })
      const callbackStore = await CallbackStore.open({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        replicas: cfg.storeReplicas,
        retentionMs: cfg.boss.retentionMs,
        logger: node.logger,
      })
      const transport = node.transport
      const election = node.election
      const metrics =
        cfg.metricsPort > 0
          ? new WorkerMetrics({ functions: executor.functions, connections: nodeConnections(node) })
          : undefined
      const cluster = cfg.runtime.cluster
      const events = new ClusterEventPublisher({
        nc: node.nc,
        cluster,
        source: { id: node.id, host: node.host, pid: node.pid, role: 'worker' },
        retentionMs: cfg.runtime.eventRetentionMs,
        createWithReplicas: cfg.storeReplicas,
        logger: node.logger,
      })
      const refusals = new RefusalReport((data, epoch) => events.emit('dispatch.refused', data, epoch))
      // Waited jobs' final records, as their writes are sent (by the boss, or the worker that ran the job).
      const announceFinal = finalAnnouncer((jobs) =>
        transport.send(finishingJobsSubject(cluster), MSG.finished, { jobs } satisfies FinishedBody),
      )
      const agent = new WorkerAgent({
        id: node.id,
        transport,
        executor,
        bossAddress: async () => (await election.whereisGlobal(BOSS))?.address,
        fetchPayload: async (jobId: string) => {
          const found = await store.boss.readSubmitted(jobId)
          return found ? assemble(found.submit, found.index, undefined, 0).payload : undefined
        },
        logger: node.logger.child({ component: 'worker' }),
        metrics,
        onRefused: (r) => refusals.add(r),
        live: new LiveRecorder(store.live, cfg.jobLog, node.logger.child({ component: 'live-log' })),
        prefetch: cfg.prefetch,
        writeFinal: async (job: Job) => {
          const w = await store.boss.writeFinal(job, undefined, (ack) => announceFinal(job, ack))
          return w.created ? w.seq : undefined
        },
      })
      let workerEvents: WorkerEventWatch = { termStarted: () => undefined, stop: () => undefined }
      const finished = new FinishedNotices((jobs) =>
        transport.send(finishedJobsSubject(cluster), MSG.finished, { jobs } satisfies FinishedBody),
      )
      const proc: WorkerProcess = new WorkerProcess(
        node,
        executor,
        store,
        agent,
        new BossRole({
          selfId: node.id,
          addressOf: (nodeId: string) => procSubject(cluster, nodeId),
          whereisBoss: () => election.whereisGlobal(BOSS),
          store: metrics ? countFencedWrites(store.boss, metrics) : store.boss,
          transport,
          registry: node.registry,
          settings: cfg.boss,
          limits,
          rates,
          publishFinished: (job: Job, withRecord: boolean) => finished.add(job, withRecord),
          announceFinal,
          publishStats: (stats) => {
            metrics?.bossLoad(stats)
            transport.send(bossStatsSubject(cluster), 'boss.stats', stats)
          },
          onFenced: (reason) => {
            proc.depositionCause = 'fenced'
            events.emit('write.fenced', { reason }, proc.boss.epoch)
            proc.roles.rejoin(reason)
          },
          metrics,
          onRedispatched: (epoch, worker, jobs, reason) =>
            events.emit('job.redispatched', { worker, jobs, reason }, epoch),
          onDispatching: (epoch, r) => {
            workerEvents.termStarted(epoch)
            // This process was a worker of the previous boss too: its own last dispatch counts.
            const own = agent.lastDispatchBefore(epoch)
            const last = laterDispatch(r.predecessorLastDispatch, own)
            events.emit(
              'boss.active',
              {
                takeoverMs: r.takeoverMs,
                dispatchingAt: new Date().toISOString(),
                adopted: r.adopted,
                requeued: r.requeued,
                ...(last === undefined
                  ? {}
                  : { predecessorEpoch: last.epoch, predecessorLastDispatchAt: new Date(last.at).toISOString() }),
              },
              epoch,
            )
          },
          startSideTasks: sideTasks(
            scheduleRunner({ jobs: store, schedules, logger: node.logger }),
            callbackRunner({ store: callbackStore, settings: cfg.callbacks, logger: node.logger }),
          ),
          logger: node.logger.child({ component: 'boss' }),
        }),
        cfg,
        node.logger,
      )
      proc.events = events
      const probe = natsProbe(transport, (id) => procSubject(cluster, id))
      workerEvents = watchWorkerEvents(node.registry, events, proc.boss, node.id, probe)
      const unwatchConnections = watchConnections(node, events)
      proc.unwatchConnections = () => {
        refusals.close()
        workerEvents.stop()
        unwatchConnections()
      }
      if (metrics) {
        proc.metrics = metrics
        metrics.track({
          isBoss: () => proc.boss.isActing,
          bossEpoch: () => agent.newestEpoch,
          running: () => agent.slotCounts.running,
          waiting: () => agent.slotCounts.waiting,
        })
        proc.metricsServer = await MetricsServer.listen(metrics, cfg.metricsPort, cfg.metricsHost, node.logger)
        node.logger.info({ url: `http://${cfg.metricsHost}:${cfg.metricsPort}/metrics` }, 'metrics listening')
      }
      await proc.run()
      return proc
    } catch (err) {
      await node?.close()
      await executor.close()
      throw err
    }
  }

  get id(): string {
    return this.node.id
  }

  private async run(): Promise<void> {
    this.agent.start()
    this.boss.start()
    this.node.election.on('leader', (name: string, leader: LeaderInfo | null) => {
      if (name !== BOSS || !leader) return
      this.agent.observeEpoch(leader.epoch)
      this.agent.bossChanged()
    })
    // Learn the current boss's epoch from ZooKeeper before taking any dispatch.
    const current = await this.node.election.whereisGlobal(BOSS)
    if (current) this.agent.observeEpoch(current.epoch)
    const leader = await this.roles.start()
    if (leader) this.agent.observeEpoch(leader.epoch)
    this.log.info({ functions: this.executor.functions, capacity: this.executor.capacity }, 'worker started')
  }

  private workerMeta(): WorkerMeta {
    return advertised(this.executor, this.cfg.prefetch)
  }

  /**
   * SIGTERM, inside SHUTDOWN_BUDGET (worker/config.ts), each phase bounded by its own deadline:
   * 1. stop taking work and delete this process's znodes — resign the election (a boss's term stops
   *    and failover takes milliseconds), withdraw the worker registration, remove the node
   *    announcement — before anything that can hang;
   * 2. let running jobs finish for WORKER_SHUTDOWN_GRACE_MS (less if the budget is short), hand back
   *    the rest, wait for the boss to acknowledge the results;
   * 3. close the job store, ZooKeeper and NATS, and end the function threads, with the time left.
   * Resolves by the budget's end whatever hangs (runMain then exits 0). Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    const b = SHUTDOWN_BUDGET
    const t0 = Date.now()
    const end = t0 + b.totalMs
    const bossEpoch = this.boss.epoch
    if (bossEpoch !== undefined) this.events?.emit('boss.deposed', { reason: 'sigterm' }, bossEpoch)
    this.depositionCause = 'sigterm'
    this.roles.stop()
    void this.metricsServer?.close()
    await this.phase('delete znodes', b.znodesMs, () =>
      Promise.all([
        this.node.election.resign(BOSS).catch((err: unknown) => this.log.warn({ err }, 'resign failed')),
        // Our registrations and the node announcement (the election stays open: results find the boss).
        this.node.registry.close().catch((err: unknown) => this.log.warn({ err }, 'deleting znodes failed')),
      ]),
    )
    const left = end - Date.now() - b.handBackMs - b.flushMs - b.closeMs
    const graceMs = Math.max(0, Math.min(this.cfg.shutdownGraceMs, left))
    await this.phase('drain', graceMs + b.handBackMs + b.flushMs, () =>
      this.agent.drain(graceMs, b.flushMs, b.handBackMs),
    )
    this.agent.close()
    // Function threads end once their jobs do: a function ignoring its signal holds them for up to
    // FUNCTION_KILL_GRACE_MS. The connections are closed meanwhile; the threads get what is left.
    const threads = this.executor.close()
    await this.phase('close connections', Math.max(0, end - Date.now()), async () => {
      this.unwatchConnections?.()
      await this.events?.close(500)
      await this.store.close().catch(() => undefined)
      await this.node.close()
    })
    await this.phase('end function threads', Math.max(0, Math.min(b.closeMs, end - Date.now())), () => threads)
    this.log.info({ tookMs: Date.now() - t0, graceMs }, 'worker stopped')
  }

  /** Run one shutdown phase for at most `ms`; past that, log and go on (never throws). */
  private async phase(what: string, ms: number, fn: () => Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)))
    try {
      const outcome = await Promise.race([fn().then(() => 'done' as const), late])
      if (outcome === 'late') this.log.warn({ phase: what, ms }, 'shutdown phase ran out of time; going on')
    } catch (err) {
      this.log.warn({ err, phase: what }, 'shutdown phase failed')
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Several side tasks of a boss term as one: all start together, and the returned stop stops them all. */
function sideTasks(
  ...starters: Array<(epoch: number, acting: () => boolean) => () => void>
): (epoch: number, acting: () => boolean) => () => void {
  return (epoch, acting) => {
    const stops = starters.map((start) => start(epoch, acting))
    return () => {
      for (const stop of stops) stop()
    }
  }
}

/** What a worker advertises: its functions, its capacity and prefetch, and the limits its modules declare. */
function advertised(executor: FunctionExecutor, prefetch: number): WorkerMeta {
  const meta: WorkerMeta = { role: 'worker', functions: [...executor.functions], capacity: executor.capacity }
  if (prefetch > 0) meta.prefetch = prefetch
  if (Object.keys(executor.limits).length > 0) meta.limits = { ...executor.limits }
  return meta
}
