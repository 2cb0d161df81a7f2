/** Shared bits of the job store tests (not a test file itself). */
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { Test } from 'tap'
import { silentLogger } from '../../runner/logger.js'
import type { Job } from '../../jobs/model.js'
import { JobStore, type JobStoreOptions } from '../../jobs/store.js'
import { uniqueName } from '../helpers/servers.js'

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

/** Open a store on a fresh cluster name (or the given one), closed at teardown. */
export async function openStore(t: Test, nc: NatsConnection, opts: Partial<JobStoreOptions> = {}): Promise<JobStore> {
  const store = await JobStore.open({ nc, cluster: uniqueName('c'), logger, ...opts })
  t.teardown(() => store.close())
  return store
}

/** Collect a watch into arrays; `loaded` flips when the initial load is signalled. */
export function collectWatch(store: JobStore) {
  const state = {
    entries: [] as Array<{ id: string; revision: number; deleted: boolean; job: Job | null }>,
    loaded: false,
    loadedAt: -1,
  }
  const stop = store.watchJobs(
    (e) => state.entries.push(e),
    () => {
      state.loaded = true
      state.loadedAt = state.entries.length
    },
  )
  return { state, stop }
}
