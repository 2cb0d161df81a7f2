/**
 * Connection events of one process: ZooKeeper and NATS lost / restored, as `connection.lost` and
 * `connection.restored` cluster events. A NATS loss is queued with the time it happened and stored
 * once NATS is back (the publisher retries), followed by the restore with how long it was down.
 */
import type { BosunNodeImpl } from '../node.js'
import type { ConnectionState, TransportStatus } from '../contracts.js'
import type { ClusterEventPublisher } from './publisher.js'

/** Start watching; returns the function that stops it. */
export function watchConnections(node: BosunNodeImpl, events: ClusterEventPublisher): () => void {
  let natsDownAt: number | undefined
  let zkDownAt: number | undefined
  const onNats = (status: TransportStatus) => {
    if (status === 'disconnected' && natsDownAt === undefined) {
      natsDownAt = Date.now()
      events.emit('connection.lost', { server: 'nats' })
    } else if (status === 'reconnected' && natsDownAt !== undefined) {
      events.emit('connection.restored', { server: 'nats', downMs: Date.now() - natsDownAt })
      natsDownAt = undefined
    }
  }
  const onZk = (state: ConnectionState) => {
    if ((state === 'suspended' || state === 'lost') && zkDownAt === undefined) {
      zkDownAt = Date.now()
      events.emit('connection.lost', { server: 'zookeeper', reason: state })
    } else if ((state === 'reconnected' || state === 'connected') && zkDownAt !== undefined) {
      events.emit('connection.restored', { server: 'zookeeper', downMs: Date.now() - zkDownAt })
      zkDownAt = undefined
    }
  }
  node.transport.on('status', onNats)
  node.session.on('state', onZk)
  return () => {
    node.transport.off('status', onNats)
    node.session.off('state', onZk)
  }
}
