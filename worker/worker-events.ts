/**
 * `worker.joined` / `worker.left` cluster events, told by the acting boss only (one teller, not one
 * per process) from the registry's watch-kept cache of the worker service: a registration that
 * appears is a worker joining, one that disappears a worker leaving. Why it left is what asking it
 * on NATS finds (ZooKeeper cannot tell a withdrawal from an expiry): it answers → `drained` (alive,
 * withdrew on SIGTERM and finishes or hands back its jobs), no process subscribed → `exited` (it
 * exited, or crashed and its session expired), no answer in time → `unreachable` (cut off or stopped).
 * The workers present when a term starts are its baseline, not joins.
 */
import {
  type ClusterEventPublisher,
  errors,
  isBosunError,
  type Registry,
  type ServiceEntry,
  type Transport,
} from '../runner/index.js'
import { MSG, WORKER_SERVICE } from '../jobs/protocol.js'

export interface ActingBoss {
  readonly isActing: boolean
  readonly epoch: number | undefined
}

export interface WorkerEventWatch {
  /** A term of this process started dispatching: the workers registered now are its baseline. */
  termStarted(epoch: number): void
  stop(): void
}

/** What asking a worker on NATS found. */
export type WorkerProbe = (workerId: string) => Promise<'alive' | 'dead' | 'silent'>

/** Ask a worker its status on NATS: an answer, "no responders" (no process there), or silence (1 s). */
export function natsProbe(transport: Transport, addressOf: (workerId: string) => string): WorkerProbe {
  return async (id) => {
    try {
      await transport.request(addressOf(id), MSG.workerStatus, {}, { timeoutMs: 1000 })
      return 'alive'
    } catch (err) {
      return isBosunError(err, errors.NO_RESPONDERS) ? 'dead' : 'silent'
    }
  }
}

const LEFT_REASON = { alive: 'drained', dead: 'exited', silent: 'unreachable' } as const

export function watchWorkerEvents(
  registry: Registry,
  events: ClusterEventPublisher,
  boss: ActingBoss,
  selfId: string,
  probe: WorkerProbe,
): WorkerEventWatch {
  const left = (id: string, epoch: number) =>
    void probe(id)
      .catch(() => 'silent' as const)
      .then((found) => events.emit('worker.left', { worker: id, reason: LEFT_REASON[found] }, epoch))
  let known: Map<string, ServiceEntry> | undefined
  let knownEpoch: number | undefined
  const others = (entries: ServiceEntry[]) => new Map(entries.filter((e) => e.id !== selfId).map((e) => [e.id, e]))
  const onChange = (service: string, entries: ServiceEntry[]) => {
    const epoch = boss.epoch
    if (service !== WORKER_SERVICE || !boss.isActing || epoch === undefined || knownEpoch !== epoch || !known) return
    const now = others(entries)
    for (const [id, e] of now)
      if (!known.has(id)) events.emit('worker.joined', { worker: id, host: e.host, pid: e.pid }, epoch)
    for (const id of known.keys()) if (!now.has(id)) left(id, epoch)
    known = now
  }
  registry.on('change', onChange)
  return {
    termStarted(epoch) {
      void registry
        .getCapable(WORKER_SERVICE)
        .then((entries) => {
          known = others(entries)
          knownEpoch = epoch
        })
        .catch(() => undefined)
    },
    stop: () => registry.off('change', onChange),
  }
}
