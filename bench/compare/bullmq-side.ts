/**
 * BullMQ's side of the compare benchmark: a fresh redis-server (AOF everysec, redis.ts), a fresh
 * queue, as many job-running processes as bosun has (its workers minus the boss) each running one
 * BullMQ Worker × the same concurrency (child.ts; processor inline or sandboxed in worker threads),
 * the Fastify front of the HTTP rows (front.ts), and a `Queue` in the bench process as the native
 * producer. Completed jobs are kept (BullMQ's default, as bosun keeps its finished jobs) and counted
 * with one `getJobCounts('completed', 'failed')` per poll.
 */
import { Queue } from 'bullmq'
import { freePort, uniqueName } from '../../test/helpers/servers.js'
import { spawnLineChild, type LineChild } from '../lib/line-child.js'
import { CHILD_SCRIPT, type BullmqMode } from './child.js'
import { redisRoundTripProbe } from './floor.js'
import type { System } from './measure.js'
import { startRedis, type RedisServer } from './redis.js'

export interface BullmqSettings {
  /** Job-running processes (bosun's workers − 1). */
  processes: number
  concurrency: number
  mode: BullmqMode
  /**
   * V8 flags every BullMQ process sets for itself before it loads BullMQ (the compare bench's
   * `bullmqV8Flags`; child.ts, as bosun's runner/v8-tuning.ts does: on `node`'s command line they
   * would be refused by the worker threads of BullMQ's sandbox, which pass the parent's execArgv on).
   */
  v8Flags: readonly string[]
}

export interface BullmqSystem extends System {
  readonly queue: string
  readonly redis: RedisServer
}

/** Start Redis, the workers and the front; resolves once every child said it is ready. */
export async function startBullmq(s: BullmqSettings): Promise<BullmqSystem> {
  const redis = await startRedis()
  const name = uniqueName('cmp')
  const base = { REDIS_PORT: String(redis.port), QUEUE: name, BENCH_V8_FLAGS: s.v8Flags.join(' ') }
  const children: LineChild[] = []
  let queue: Queue | undefined
  try {
    for (let i = 1; i <= s.processes; i++)
      children.push(
        spawnLineChild(`bullmq-worker${i}`, CHILD_SCRIPT, {
          ...base,
          BENCH_COMPARE_ROLE: 'worker',
          CONCURRENCY: String(s.concurrency),
          BULLMQ_MODE: s.mode,
        }),
      )
    const port = await freePort()
    const front = spawnLineChild('bullmq-front', CHILD_SCRIPT, {
      ...base,
      BENCH_COMPARE_ROLE: 'front',
      PORT: String(port),
    })
    children.push(front)
    await Promise.all(
      children.map(async (c) => {
        const ready = c.next((e) => e.ev === 'ready', 120_000)
        const gone = c.exited.then(() => 'gone' as const)
        if ((await Promise.race([ready, gone])) === 'gone') throw new Error(`${c.name} exited before it was ready`)
      }),
    )
    queue = new Queue(name, { connection: { host: '127.0.0.1', port: redis.port } })
    queue.setMaxListeners(0) // each add in flight listens for the queue's closing
    await queue.waitUntilReady()
    return system(name, redis, queue, children, `http://127.0.0.1:${port}`)
  } catch (err) {
    await queue?.close()
    await Promise.all(children.map((c) => c.kill()))
    await redis.close()
    throw err
  }
}

function system(name: string, redis: RedisServer, queue: Queue, children: LineChild[], httpUrl: string): BullmqSystem {
  let closing: Promise<void> | undefined
  return {
    side: 'bullmq',
    queue: name,
    redis,
    httpUrl,
    async failed() {
      return (await queue.getJobCounts('failed')).failed ?? 0
    },
    async finished() {
      const c = await queue.getJobCounts('completed', 'failed')
      return (c.completed ?? 0) + (c.failed ?? 0)
    },
    pids() {
      const pids: Record<string, number | undefined> = { 'redis-server': redis.pid }
      for (const c of children) pids[c.name.replace(/^bullmq-/, '')] = c.pid
      return pids
    },
    async nativeBatch(n) {
      await queue.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: null })))
    },
    async nativeOne() {
      await queue.add('noop', null)
    },
    roundTripProbe: () => Promise.resolve(redisRoundTripProbe(redis.port)),
    close() {
      closing ??= (async () => {
        await queue.close().catch(() => undefined)
        await Promise.all(children.map((c) => c.kill()))
        await redis.close()
      })()
      return closing
    },
  }
}
