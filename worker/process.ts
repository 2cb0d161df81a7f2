/**
 * A worker process: a candidate for the global "boss" role that runs jobs while it is not the boss.
 * Composes the runtime node, the function executor, the job store, the worker agent and the boss role,
 * and switches between the two roles as leadership comes and goes.
 */
import { bossStatsSubject, jobEventSubject, procSubject } from '../runner/transport/index.js'
import { startNode, type BosunNodeImpl } from '../runner/node.js'
import { type LeaderInfo, type Logger } from '../runner/index.js'
import { WorkerAgent } from './agent/worker-agent.js'
import { BossRole } from './boss/boss-role.js'
import type { WorkerConfig } from './config.js'
import { createExecutor, type FunctionExecutor } from './executor/index.js'
import { publicJob, type Job } from '../jobs/model.js'
import { JobStore } from '../jobs/store.js'
import { BOSS, WORKER_SERVICE, type WorkerMeta } from '../jobs/protocol.js'
import { RoleSwitch } from './role-switch.js'

/** Time left for closing connections after the drain, inside the contract's 10 s SIGTERM budget. */
const RESULT_FLUSH_MS = 1500

export class WorkerProcess {
  private stopping: Promise<void> | undefined
  private readonly roles: RoleSwitch

  private constructor(
    readonly node: BosunNodeImpl,
    private readonly executor: FunctionExecutor,
    private readonly store: JobStore,
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
      concurrency: cfg.concurrency,
      maxResultBytes: cfg.maxResultBytes,
      abortGraceMs: cfg.killGraceMs,
      logger,
    })
    let node: BosunNodeImpl | undefined
    try {
      const meta: WorkerMeta = { role: 'worker', functions: [...executor.functions], capacity: executor.capacity }
      node = await startNode(cfg.runtime, { role: 'worker', logger, meta: { ...meta } })
      const store = await JobStore.open({ nc: node.nc, cluster: cfg.runtime.cluster, replicas: cfg.storeReplicas, logger: node.logger })
      const transport = node.transport
      const election = node.election
      const agent = new WorkerAgent({
        id: node.id,
        transport,
        executor,
        bossAddress: async () => (await election.whereisGlobal(BOSS))?.address,
        logger: node.logger.child({ component: 'worker' }),
      })
      const cluster = cfg.runtime.cluster
      const proc: WorkerProcess = new WorkerProcess(
        node,
        executor,
        store,
        agent,
        new BossRole({
          selfId: node.id,
          addressOf: (nodeId: string) => procSubject(cluster, nodeId),
          whereisBoss: () => election.whereisGlobal(BOSS),
          store,
          transport,
          registry: node.registry,
          settings: cfg.boss,
          publishFinished: (job: Job) => transport.send(jobEventSubject(cluster, job.id), 'job.finished', publicJob(job)),
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
   * SIGTERM: a boss resigns at once (failover in milliseconds); every worker stops taking work,
   * lets running jobs finish for WORKER_SHUTDOWN_GRACE_MS, hands back the rest, waits for the boss
   * to acknowledge its results, deletes its znodes and closes. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    this.roles.stop()
    const t0 = Date.now()
    await this.node.election.resign(BOSS).catch((err: unknown) => this.log.warn({ err }, 'resign failed'))
    await this.node.registry.unregister(WORKER_SERVICE).catch((err: unknown) => this.log.warn({ err }, 'unregister failed'))
    await this.agent.drain(this.cfg.shutdownGraceMs, RESULT_FLUSH_MS)
    this.agent.close()
    await this.executor.close()
    await this.store.close().catch(() => undefined)
    await this.node.close()
    this.log.info({ tookMs: Date.now() - t0 }, 'worker stopped')
  }
}
