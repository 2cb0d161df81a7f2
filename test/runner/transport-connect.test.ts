import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { errors, isBosunError, type BosunError } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'
import {
  connectNats,
  natsConnectionOptions,
  PING_INTERVAL_MS,
  RECONNECT_TIME_WAIT_MS,
} from '../../runner/transport/connect.js'
import { NatsTransport } from '../../runner/transport/nats-transport.js'
import { freePort, startNats, uniqueName } from '../helpers/servers.js'
import type { NatsConfig } from '../../runner/config.js'

const logger = silentLogger()

async function connectError(t: Test, cfg: NatsConfig, code: string, pattern: RegExp, what: string): Promise<void> {
  try {
    const nc = await connectNats(cfg, { name: 'x', logger })
    await nc.close()
    t.fail(`${what}: connected, expected ${code}`)
  } catch (err) {
    t.ok(isBosunError(err), `${what}: BosunError`)
    t.equal((err as BosunError).code, code, `${what}: ${code}`)
    t.match((err as Error).message, pattern, `${what}: clear message`)
  }
}

/** Connect, and prove the connection carries traffic with a request/reply round trip. */
async function roundTrip(t: Test, cfg: NatsConfig): Promise<void> {
  const cluster = uniqueName('c')
  const nc = await connectNats(cfg, { name: 'rt', logger })
  const tr = new NatsTransport({ nc, cluster, nodeId: 'n1', logger })
  t.teardown(() => tr.close())
  tr.handle('echo', (b) => b)
  await tr.flush()
  t.same(await tr.request(tr.address, 'echo', { ok: 1 }), { ok: 1 }, 'request/reply over the connection')
}

t.test('connection options: reconnect forever, short pings, credentials, TLS files', async (t) => {
  const o = natsConnectionOptions(
    {
      servers: ['nats://a:1', 'nats://b:2'],
      user: 'u',
      pass: 'p',
      token: 'tk',
      tls: { caFile: '/ca', certFile: '/c', keyFile: '/k' },
    },
    'me',
  )
  t.same(o.servers, ['nats://a:1', 'nats://b:2'])
  t.equal(o.name, 'me')
  t.equal(o.maxReconnectAttempts, -1, 'never gives up reconnecting')
  t.equal(o.reconnectTimeWait, RECONNECT_TIME_WAIT_MS)
  t.ok(RECONNECT_TIME_WAIT_MS <= 500)
  t.equal(o.pingInterval, PING_INTERVAL_MS)
  t.ok((o.pingInterval ?? 0) * (o.maxPingOut ?? 0) <= 10_000, 'a dead server is noticed within ~10 s')
  t.equal(o.user, 'u')
  t.equal(o.pass, 'p')
  t.equal(o.token, 'tk')
  t.same(o.tls, { caFile: '/ca', certFile: '/c', keyFile: '/k' })
  t.equal(o.noAsyncTraces, true, 'no Error object built per request just in case it fails (hot path)')
  t.throws(() => natsConnectionOptions({ servers: ['nats://a:1'], credsFile: '/nonexistent/x.creds' }, 'me'), {
    code: errors.CONFIG.code,
  })
})

t.test('no server reachable: a clear NATS_NOT_CONNECTED', async (t) => {
  const port = await freePort()
  await connectError(
    t,
    { servers: [`nats://127.0.0.1:${port}`] },
    errors.NATS_NOT_CONNECTED.code,
    new RegExp(`cannot connect to NATS at nats://127.0.0.1:${port}`),
    'down',
  )
})

t.test('user/password authorization', async (t) => {
  const nats = await startNats({ jetstream: false, config: 'authorization { user: a, password: b }' })
  t.teardown(() => nats.close())
  await roundTrip(t, { servers: [nats.url], user: 'a', pass: 'b' })
  await connectError(
    t,
    { servers: [nats.url], user: 'a', pass: 'wrong' },
    errors.CONFIG.code,
    /refused our credentials/,
    'wrong password',
  )
  await connectError(t, { servers: [nats.url] }, errors.CONFIG.code, /refused our credentials/, 'no credentials')
})

t.test('token authorization', async (t) => {
  const nats = await startNats({ jetstream: false, config: 'authorization { token: s3cr3t }' })
  t.teardown(() => nats.close())
  await roundTrip(t, { servers: [nats.url], token: 's3cr3t' })
  await connectError(
    t,
    { servers: [nats.url], token: 'nope' },
    errors.CONFIG.code,
    /refused our credentials/,
    'wrong token',
  )
})

t.test('mutual TLS with CA, client certificate and key files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const f = (n: string) => join(dir, n)
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' })
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=bosun-test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  )
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const who of ['server', 'client']) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who}`,
      '-keyout',
      f(`${who}.key`),
      '-out',
      f(`${who}.csr`),
    )
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f('san.ext'),
      '-out',
      f(`${who}.pem`),
    )
  }
  const nats = await startNats({
    jetstream: false,
    config:
      `tls { cert_file: "${f('server.pem')}", key_file: "${f('server.key')}", ` +
      `ca_file: "${f('ca.pem')}", verify: true }`,
  })
  t.teardown(() => nats.close())
  const servers = [`tls://127.0.0.1:${nats.server.port}`]
  await roundTrip(t, { servers, tls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') } })
  await connectError(t, { servers, tls: { caFile: f('nope.pem') } }, errors.CONFIG.code, /TLS/, 'missing CA file')
})
