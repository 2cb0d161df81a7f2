/** Shared bits of the job store tests (not a test file itself). */
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { Test } from 'tap'
import { silentLogger } from '../../runner/logger.js'

export const logger = silentLogger()

/** A NATS connection that reconnects forever (quickly) and is closed at teardown. */
export async function natsConn(t: Test, url: string): Promise<NatsConnection> {
  const nc = await connect({
    servers: url.split(','),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    pingInterval: 2000,
  })
  t.teardown(() => nc.close().catch(() => undefined))
  return nc
}
