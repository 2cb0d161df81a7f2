/**
 * The compare benchmark's child processes: `node dist/bench/compare/child.js` with
 * BENCH_COMPARE_ROLE=worker (one BullMQ Worker: the job-running process, inline or sandboxed),
 * front (the Fastify front of BullMQ's HTTP rows, front.ts) or echo (a NATS subscriber answering
 * every request at once: the far end of bosun's broker round trip, floor.ts). Each prints
 * `{"ev":"ready"}` as a JSON line (bench/lib/line-child.ts) once connected. The parent imports this
 * module only for CHILD_SCRIPT: a role runs only when the file is the process's main module.
 *
 * Env: REDIS_PORT, QUEUE, BENCH_V8_FLAGS (v8-flags-from-env.ts), and for a worker CONCURRENCY and
 * BULLMQ_MODE (`inline` | `sandboxed`), for the front PORT; for echo only NATS_URL and SUBJECT.
 */
// First: the V8 flags of this side must be set before BullMQ is loaded.
import './v8-flags-from-env.js'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'bullmq'
import noop from './processor.js'

/** The script the parent spawns (relative to the repository root). */
export const CHILD_SCRIPT = 'dist/bench/compare/child.js'

/** How a BullMQ worker runs its processor: in its own event loop, or in worker threads. */
export type BullmqMode = 'inline' | 'sandboxed'

function say(ev: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ ev, t: Date.now(), pid: process.pid, ...extra }) + '\n')
}

function need(name: string): string {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

async function runWorker(): Promise<void> {
  // Sandboxed processors pipe each worker thread's stdout and stderr into ours: one listener set per thread.
  process.stdout.setMaxListeners(0)
  process.stderr.setMaxListeners(0)
  const connection = { host: '127.0.0.1', port: Number(need('REDIS_PORT')), maxRetriesPerRequest: null }
  const sandboxed = (process.env.BULLMQ_MODE ?? 'sandboxed') === 'sandboxed'
  const file = fileURLToPath(new URL('./processor.js', import.meta.url))
  const worker = new Worker(need('QUEUE'), sandboxed ? file : noop, {
    connection,
    concurrency: Number(need('CONCURRENCY')),
    useWorkerThreads: sandboxed,
  })
  worker.on('error', (err) => say('error', { message: err.message }))
  process.once('SIGTERM', () => void worker.close().finally(() => process.exit(0)))
  await worker.waitUntilReady()
  say('ready', { mode: sandboxed ? 'sandboxed' : 'inline' })
}

async function runEcho(): Promise<void> {
  const { connect } = await import('@nats-io/transport-node')
  const nc = await connect({ servers: need('NATS_URL').split(','), name: 'bench-compare-echo' })
  nc.subscribe(need('SUBJECT'), {
    callback: (_err, m) => {
      m.respond(m.data)
    },
  })
  await nc.flush()
  process.once('SIGTERM', () => void nc.close().finally(() => process.exit(0)))
  say('ready')
}

async function main(): Promise<void> {
  const role = need('BENCH_COMPARE_ROLE')
  if (role === 'worker') return runWorker()
  if (role === 'echo') return runEcho()
  if (role === 'front') {
    const { runFront } = await import('./front.js')
    const port = await runFront({
      redisPort: Number(need('REDIS_PORT')),
      queue: need('QUEUE'),
      port: Number(need('PORT')),
    })
    return say('ready', { port })
  }
  throw new Error(`unknown BENCH_COMPARE_ROLE ${role}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`compare child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  })
}
