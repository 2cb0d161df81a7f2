/**
 * A worker process: a candidate for the global "boss" role that runs jobs while it is not the boss.
 * Composes the runtime node, the function executor, the job store, the worker agent and the boss role,
 * and switches between the two roles as leadership comes and goes.
 */
import { bossStatsSubject, finishedJobsSubject, procSubject } from '../runner/transport/index.js'
import { startNode, type BosunNodeImpl } from '../runner/node.js'
import { type LeaderInfo, type Logger } from '../runner/index.js'
import { WorkerAgent } from './agent/worker-agent.js'
import { BossRole } from './boss/boss-role.js'
import { FinishedNotices } from './boss/finished-notices.js'
import { SHUTDOWN_BUDGET, type WorkerConfig } from './config.js'
import { createExecutor, type FunctionExecutor } from './executor/index.js'
import type { Job } from '../jobs/model.js'
import { assemble, JobStreams } from '../jobs/streams/index.js'
import { BOSS, MSG, WORKER_SERVICE, type FinishedBody, type WorkerMeta } from '../jobs/protocol.js'
import { RoleSwitch } from './role-switch.js'

export class WorkerProcess {
  private stopping: Promise<void> | undefined
  private readonly roles: RoleSwitch

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
            this.roles.elected(l)
          },
          onDeposed: (reason) => this.roles.deposed(reason),
        }),
      logger: log,
    })
  }

  static async start(cfg: WorkerConfig, logger: Logger): Promise<WorkerProcess> {
    const executor = await createExecutor({
      functionsDir: cfg.functionsDir,
      isolation: cfg.isolation,
      concurrency: cfg.concurrency,
      maxResultBytes: cfg.maxResultBytes,
      abortGraceMs: cfg.killGraceMs,
      logger,
    })
    let node: BosunNodeImpl | undefined
    try {
      const meta: WorkerMeta = { role: 'worker', functions: [...executor.functions], capacity: executor.capacity }
      node = await startNode(cfg.runtime, { role: 'worker', logger, meta: { ...meta } })
      const store = await JobStreams.open({
        nc: node.nc,
        cluster: cfg.runtime.cluster,
        replicas: cfg.storeReplicas,
        retentionMs: cfg.boss.retentionMs,
        logger: node.logger,
      })
      const transport = node.transport
      const election = node.election
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
      })
      const cluster = cfg.runtime.cluster
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
          store: store.boss,
          transport,
          registry: node.registry,
          settings: cfg.boss,
          publishFinished: (job: Job) => finished.add(job.id, job.state),
          publishStats: (stats) => transport.send(bossStatsSubject(cluster), 'boss.stats', stats),
          onFenced: (reason) => proc.roles.rejoin(reason),
          logger: node.logger.child({ component: 'boss' }),
        }),
        cfg,
        node.logger,
      )
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
    return { role: 'worker', functions: [...this.executor.functions], capacity: this.executor.capacity }
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
    this.roles.stop()
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
