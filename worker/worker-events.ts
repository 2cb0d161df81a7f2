/**
 * `worker.joined` / `worker.left` cluster events, told by the acting boss only (one teller, not one
 * per process) from the registry's watch-kept cache of the worker service: a registration that
 * appears is a worker joining, one that disappears a worker leaving (its session ended, or it
 * withdrew on SIGTERM). The workers present when a term starts are its baseline, not joins.
 */
import type { Registry, ServiceEntry } from '../runner/index.js'
import type { ClusterEventPublisher } from '../runner/events/publisher.js'
import { WORKER_SERVICE } from '../jobs/protocol.js'

export interface ActingBoss {
  readonly isActing: boolean
  readonly epoch: number | undefined
}

export interface WorkerEventWatch {
  /** A term of this process started dispatching: the workers registered now are its baseline. */
  termStarted(epoch: number): void
  stop(): void
}

export function watchWorkerEvents(
  registry: Registry,
  events: ClusterEventPublisher,
  boss: ActingBoss,
  selfId: string,
): WorkerEventWatch {
  let known: Map<string, ServiceEntry> | undefined
  let knownEpoch: number | undefined
  const others = (entries: ServiceEntry[]) => new Map(entries.filter((e) => e.id !== selfId).map((e) => [e.id, e]))
  const onChange = (service: string, entries: ServiceEntry[]) => {
    const epoch = boss.epoch
    if (service !== WORKER_SERVICE || !boss.isActing || epoch === undefined || knownEpoch !== epoch || !known) return
    const now = others(entries)
    for (const [id, e] of now)
      if (!known.has(id)) events.emit('worker.joined', { worker: id, host: e.host, pid: e.pid }, epoch)
    for (const id of known.keys())
      if (!now.has(id)) events.emit('worker.left', { worker: id, reason: 'unregistered' }, epoch)
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
