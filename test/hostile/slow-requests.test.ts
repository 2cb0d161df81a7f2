/**
 * Slowloris and half-sent requests against the real API process (node:net, byte-exact): clients
 * that trickle headers one byte at a time, that announce Content-Length 1000 and send 10 bytes, or
 * that connect and say nothing. The API must keep serving everyone else meanwhile and must drop the
 * stalled sockets within its request timeout (api/app.ts DEFAULT_REQUEST_TIMEOUT_MS; Node checks
 * open connections every quarter of it), answering 408 where it can.
 */
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../api/app.js'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { deadProcesses, healthProblem, SESSION_TIMEOUT_MS, startCluster } from './helpers.js'

const REQUEST_TIMEOUT_MS = DEFAULT_REQUEST_TIMEOUT_MS
/** Node's connection check runs every quarter of the timeout (at most 5 s): the latest a drop can come. */
const CHECK_INTERVAL_MS = Math.min(5000, Math.floor(REQUEST_TIMEOUT_MS / 4))
/** Slack for a loaded 2-core machine. */
const SLACK_MS = 6000

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  zk,
  nats,
  cluster: uniqueName('slow'),
  workers: 2,
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await startCluster(cluster)
const port = Number(new URL(cluster.apiUrl).port)

interface Stalled {
  kind: string
  sock: Socket
  openedAt: number
  /** ms after openedAt when the server closed the socket. */
  closedAfter: Promise<number>
  received(): string
  stop(): void
}

/** Open a connection, send `first`, then (optionally) one more byte every `trickleMs`, forever. */
function stalled(kind: string, first: string, trickleMs?: number): Stalled {
  const sock = connect({ host: '127.0.0.1', port })
  const openedAt = Date.now()
  let got = ''
  let timer: NodeJS.Timeout | undefined
  sock.on('data', (d) => (got += d.toString('latin1')))
  sock.on('error', () => undefined)
  const closedAfter = new Promise<number>((resolve) =>
    sock.once('close', () => {
      if (timer) clearInterval(timer)
      resolve(Date.now() - openedAt)
    }),
  )
  sock.once('connect', () => {
    if (first) sock.write(first)
    if (trickleMs) timer = setInterval(() => sock.write('a'), trickleMs)
  })
  return {
    kind,
    sock,
    openedAt,
    closedAfter,
    received: () => got,
    stop: () => {
      if (timer) clearInterval(timer)
      sock.destroy()
    },
  }
}

t.test('stalled clients are dropped within the request timeout while others are served', async (t) => {
  const attackers: Stalled[] = []
  t.teardown(() => attackers.forEach((a) => a.stop()))
  for (let i = 0; i < 15; i++) {
    // Headers one byte every 300 ms: never idle, never finished.
    attackers.push(stalled('trickled headers', 'POST /jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ', 300))
    // Complete headers announcing 1000 bytes, 10 bytes sent, then silence.
    attackers.push(
      stalled(
        'half body',
        'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"functio',
      ),
    )
    // Connects and sends nothing at all.
    attackers.push(stalled('silent', ''))
  }
  // Meanwhile other clients are served promptly: health checks and real jobs.
  const served: number[] = []
  const failed: string[] = []
  const deadline = Date.now() + Math.min(5000, REQUEST_TIMEOUT_MS / 2)
  while (Date.now() < deadline) {
    const t0 = Date.now()
    const health = await fetch(`${cluster.apiUrl}/healthz`)
    if (health.status !== 200) failed.push(`/healthz ${health.status}`)
    const job = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: served.length })
    if (job.body?.state !== 'succeeded') failed.push(`job ${job.status} ${job.body?.state}`)
    served.push(Date.now() - t0)
  }
  t.same(failed, [], 'health checks and jobs during the attack all succeed')
  t.ok(served.length >= 3, `served ${served.length} rounds (health check + job) during the attack`)
  t.ok(Math.max(...served) < 5000, `each round took < 5 s (max ${Math.max(...served)} ms)`)

  const closes = await Promise.all(
    attackers.map((a) =>
      Promise.race([
        a.closedAfter,
        new Promise<number>((r) => setTimeout(() => r(-1), REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + SLACK_MS + 5000)),
      ]),
    ),
  )
  const byKind = new Map<string, number[]>()
  attackers.forEach((a, i) => byKind.set(a.kind, [...(byKind.get(a.kind) ?? []), closes[i]!]))
  for (const [kind, times] of byKind) {
    t.notOk(times.includes(-1), `every "${kind}" client was disconnected by the server (${times.join(', ')} ms)`)
    const max = Math.max(...times)
    const min = Math.min(...times.filter((x) => x >= 0))
    t.ok(
      max <= REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + SLACK_MS,
      `"${kind}": dropped within the timeout (latest after ${max} ms, limit ${REQUEST_TIMEOUT_MS} ms)`,
    )
    t.ok(min >= REQUEST_TIMEOUT_MS - 1000, `"${kind}": not dropped before the timeout (earliest after ${min} ms)`)
  }
  const halfBody = attackers.filter((a) => a.kind === 'half body')
  t.ok(
    halfBody.every((a) => /^HTTP\/1\.1 408 /.test(a.received())),
    'a half-sent request is answered 408 Request Timeout',
  )
  t.same(deadProcesses(cluster), [], 'no process exited')
})

t.test('a slow but steady client that finishes within the timeout is served normally', async (t) => {
  const body = JSON.stringify({ function: 'echo', payload: 'slow but fine' })
  const head =
    'POST /jobs?wait=10000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`
  const sock = connect({ host: '127.0.0.1', port })
  let got = ''
  sock.on('data', (d) => (got += d.toString('utf8')))
  const closed = new Promise<void>((r) => sock.once('close', () => r()))
  await new Promise<void>((r) => sock.once('connect', () => r()))
  // The request in ~8 pieces spread over ~40 % of the timeout.
  const text = head + body
  const pieces = 8
  const step = Math.ceil(text.length / pieces)
  for (let i = 0; i < text.length; i += step) {
    sock.write(text.slice(i, i + step))
    await new Promise((r) => setTimeout(r, (REQUEST_TIMEOUT_MS * 0.4) / pieces))
  }
  await closed
  t.match(got, /^HTTP\/1\.1 200 /, 'answered 200')
  t.match(got, /slow but fine/, 'with the echoed payload')
})

t.test('the API is healthy afterwards', async (t) => {
  t.equal(await healthProblem(cluster), undefined)
})
