/**
 * bootstrap: one bosun process = one NATS connection + one ZooKeeper session, with the registry,
 * the election and the transport on top (the seed's `bootstrap`). Announces the node for discovery.
 * `close()` resigns, deletes our znodes, then closes ZooKeeper and drains NATS — in that order, so
 * failover after a graceful stop takes milliseconds.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { NatsConnection } from '@nats-io/transport-node'
import type { RuntimeConfig } from './config.js'
import type { BosunNode, Meta } from './contracts.js'
import type { Logger } from './logger.js'
import { connectNats, NatsTransport } from './transport/index.js'
import { ZkElection, ZkRegistry, ZkSession } from './zk/index.js'

export interface StartNodeOptions {
  /** Used in the generated node id and the NATS connection name, e.g. 'worker' or 'api'. */
  role: string
  logger: Logger
  /** Node metadata for discovery (getPeers). */
  meta?: Meta
}

export class BosunNodeImpl extends EventEmitter implements BosunNode {
  readonly pid = process.pid
  private closing: Promise<void> | undefined

  constructor(
    readonly id: string,
    readonly cluster: string,
    readonly host: string,
    readonly logger: Logger,
    readonly nc: NatsConnection,
    readonly session: ZkSession,
    readonly registry: ZkRegistry,
    readonly election: ZkElection,
    readonly transport: NatsTransport,
  ) {
    super()
  }

  /** ZooKeeper connected (and confirmed lately) and NATS connected. */
  ready(): boolean {
    return this.zkConnected() && this.transport.connected
  }

  zkConnected(): boolean {
    return this.session.isConfirmed()
  }

  /** Idempotent, ordered shutdown. */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn()
      } catch (err) {
        this.logger.warn({ err }, `close: ${what} failed`)
      }
    }
    await step('election', () => this.election.close())
    await step('registry', () => this.registry.close())
    await step('zookeeper', () => this.session.close())
    await step('nats', () => this.transport.close())
  }
}

export function generateNodeId(role: string): string {
  return `${role}-${randomBytes(5).toString('hex')}`
}

/** Connect to NATS and ZooKeeper, build the recipes and announce this node. */
export async function startNode(config: RuntimeConfig, opts: StartNodeOptions): Promise<BosunNodeImpl> {
  const id = config.nodeId ?? generateNodeId(opts.role)
  const logger = opts.logger.child({ node: id })
  const nc = await connectNats(config.nats, { name: `bosun-${config.cluster}-${id}`, logger })
  const transport = new NatsTransport({ nc, cluster: config.cluster, nodeId: id, logger })
  const session = new ZkSession({
    servers: config.zk.servers,
    chroot: config.zk.chroot,
    sessionTimeoutMs: config.zk.sessionTimeoutMs,
    auth: config.zk.auth,
    cluster: config.cluster,
    logger,
  })
  try {
    await session.start()
  } catch (err) {
    await transport.close().catch(() => undefined)
    throw err
  }
  const who = { nodeId: id, host: config.host, pid: process.pid }
  const registry = new ZkRegistry({ ...who, session, send: (a, t, b) => transport.send(a, t, b), logger })
  const election = new ZkElection({ ...who, session, logger })
  const node = new BosunNodeImpl(id, config.cluster, config.host, logger, nc, session, registry, election, transport)
  await registry.announce(transport.address, opts.meta ?? {})
  return node
}
