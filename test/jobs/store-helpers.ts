/** Shared bits of the job store tests (not a test file itself). */
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { Test } from 'tap'
import { silentLogger } from '../../runner/logger.js'
import type { Job } from '../../jobs/model.js'

export const logger = silentLogger()

let seq = 0
/** A valid queued job with a unique id. */
export function makeJob(over: Partial<Job> = {}): Job {
  seq++
  return {
    id: `j${Date.now().toString(36)}${seq.toString(36).padStart(5, '0')}${Math.random().toString(36).slice(2, 6)}`,
    function: 'echo',
    state: 'queued',
    attempts: 0,
    maxAttempts: 1,
    payload: { n: seq },
    priority: 0,
    timeoutMs: 60_000,
    createdAt: new Date().toISOString(),
    epoch: 0,
    ...over,
  }
}

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
