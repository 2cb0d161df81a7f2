/**
 * The HTTP front of BullMQ's side in the compare benchmark: a minimal Fastify app with bosun's three
 * submit routes, so the same load generator drives both products over HTTP.
 * - `POST /jobs` → `queue.add`, 202 with the job (200 after `?wait=<ms>` once it finished:
 *   `job.waitUntilFinished(queueEvents)`);
 * - `POST /jobs/batch` ({ jobs: [...] }, ≤ 1,000) → `queue.addBulk`, 202 with `{ jobs: [{ id, state }] }`.
 * Bodies are checked by Fastify's JSON schema, as bosun's API checks its own. The QueueEvents reader
 * (one XREAD of every queue event) exists only while `?wait` requests are open, as bosun's API
 * subscribes to a job's event only while a request waits for it: the throughput rows do not pay for it.
 */
import Fastify from 'fastify'
import { Queue, QueueEvents, type Job } from 'bullmq'

export interface FrontOptions {
  redisPort: number
  queue: string
  port: number
}

const spec = {
  type: 'object',
  required: ['function'],
  properties: { function: { type: 'string', minLength: 1, maxLength: 128 }, payload: {} },
} as const

interface Spec {
  function: string
  payload?: unknown
}

/** The public shape of a job (what bosun's API answers, in short). */
function publicJob(job: Job, state: string, result?: unknown) {
  return {
    id: job.id,
    function: job.name,
    state,
    createdAt: new Date(job.timestamp).toISOString(),
    ...(result === undefined ? {} : { result }),
  }
}

/** One QueueEvents while any `?wait` request is open; closed 2 s after the last one ends. */
class Waiters {
  private events: Promise<QueueEvents> | undefined
  private open = 0
  private idle: NodeJS.Timeout | undefined

  constructor(
    private readonly queue: string,
    private readonly redisPort: number,
  ) {}

  async acquire(): Promise<QueueEvents> {
    this.open++
    clearTimeout(this.idle)
    this.events ??= (async () => {
      const qe = new QueueEvents(this.queue, { connection: { host: '127.0.0.1', port: this.redisPort } })
      await qe.waitUntilReady()
      return qe
    })()
    return this.events
  }

  release(): void {
    if (--this.open > 0) return
    this.idle = setTimeout(() => {
      const events = this.events
      this.events = undefined
      void events?.then((qe) => qe.close())
    }, 2000)
  }
}

/** Start the front; resolves with the port it listens on. */
export async function runFront(o: FrontOptions): Promise<number> {
  const connection = { host: '127.0.0.1', port: o.redisPort }
  const queue = new Queue(o.queue, { connection })
  queue.setMaxListeners(0) // each add in flight listens for the queue's closing
  await queue.waitUntilReady()
  const waiters = new Waiters(o.queue, o.redisPort)
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 })

  app.post(
    '/jobs',
    {
      schema: {
        body: spec,
        querystring: { type: 'object', properties: { wait: { type: 'integer', minimum: 0, maximum: 60_000 } } },
      },
    },
    async (request, reply) => {
      const body = request.body as Spec
      const wait = (request.query as { wait?: number }).wait ?? 0
      if (wait <= 0) {
        const job = await queue.add(body.function, body.payload ?? null)
        return reply.code(202).send(publicJob(job, 'queued'))
      }
      const events = await waiters.acquire()
      try {
        const job = await queue.add(body.function, body.payload ?? null)
        try {
          const result: unknown = await job.waitUntilFinished(events, wait)
          return reply.code(200).send(publicJob(job, 'succeeded', result ?? null))
        } catch (err) {
          const timedOut = /timed out/i.test((err as Error).message)
          return reply.code(timedOut ? 202 : 200).send(publicJob(job, timedOut ? 'queued' : 'failed'))
        }
      } finally {
        waiters.release()
      }
    },
  )

  app.post(
    '/jobs/batch',
    {
      schema: {
        body: {
          type: 'object',
          required: ['jobs'],
          properties: { jobs: { type: 'array', minItems: 1, maxItems: 1000, items: spec } },
        },
      },
    },
    async (request, reply) => {
      const { jobs } = request.body as { jobs: Spec[] }
      const added = await queue.addBulk(jobs.map((j) => ({ name: j.function, data: j.payload ?? null })))
      return reply.code(202).send({ jobs: added.map((j) => ({ id: j.id, state: 'queued' })) })
    },
  )

  process.once('SIGTERM', () => void Promise.allSettled([app.close(), queue.close()]).finally(() => process.exit(0)))
  await app.listen({ host: '127.0.0.1', port: o.port })
  return o.port
}
