/**
 * NATS authentication and TLS on a real cluster.
 * - nats-server 2.9 with single-user `authorization { user, password }` (JetStream works in the
 *   global account): the cluster runs with NATS_USER/NATS_PASS; a process with a wrong password or
 *   none fails to start with a clear error and exit code 1, leaving nothing behind in ZooKeeper.
 * - nats-server with `tls { cert_file, key_file }` (a CA and a server certificate made with openssl
 *   here): the cluster runs with NATS_URL=tls://… and NATS_TLS_CA; a process that does not trust the
 *   server's certificate fails to start with exit code 1.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { spawnBosun, TestCluster, type BosunProcess } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName, type NatsHandle, type ZkHandle } from '../helpers/servers.js'
import { deadProcesses, healthProblem, SESSION_TIMEOUT_MS, startCluster, zk, zkRaw } from '../hostile/helpers.js'

const certDir = mkdtempSync(join(tmpdir(), 'bosun-tls-'))
const zkServer = await startZooKeeper()
const closers: (() => Promise<void>)[] = []
t.teardown(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await zkServer.close()
  rmSync(certDir, { recursive: true, force: true })
})

/** Wait for a process to exit (it must, by itself) and return its exit code and log. */
async function exitOf(
  p: BosunProcess,
  timeoutMs = 40_000,
): Promise<{ code: number | null | 'still running'; log: string }> {
  const code = await Promise.race([
    p.exited,
    new Promise<'still running'>((r) => setTimeout(() => r('still running'), timeoutMs)),
  ])
  if (code === 'still running') await p.kill()
  return { code, log: p.logs() }
}

/** Start a process that must fail, and check it fails clearly and leaves no znode behind. */
async function mustFailToStart(
  t: Test,
  cluster: TestCluster,
  env: Record<string, string>,
  script: string,
  pattern: RegExp,
): Promise<void> {
  const id = uniqueName('bad').slice(0, 30)
  const p = spawnBosun(id, script, { ...cluster.env(), BOSUN_NODE_ID: id, PORT: '0', HOST: '127.0.0.1', ...env })
  const { code, log } = await exitOf(p)
  t.equal(code, 1, `${script} exits with code 1`)
  t.match(log, pattern, `the log says why: ${(log.match(pattern) ?? [''])[0]}`)
  t.notMatch(log, /at .*\n\s+at /, 'no raw stack trace dump on stderr outside the log line')
  const raw = await zkRaw(zkServer.connect)
  try {
    const nodes = await zk.children(raw, `/${cluster.opts.cluster}/nodes`).catch(() => [] as string[])
    t.notOk(nodes.includes(id), 'it left no znode in ZooKeeper')
  } finally {
    zk.close(raw)
  }
}

async function clusterOn(nats: NatsHandle, zkh: ZkHandle, env: Record<string, string>): Promise<TestCluster> {
  const cluster = new TestCluster({
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    zk: zkh,
    nats,
    cluster: uniqueName('nauth'),
    workers: 2,
    env,
  })
  closers.push(() => cluster.close())
  await startCluster(cluster)
  return cluster
}

t.test(
  'user/password: the cluster runs with NATS_USER/NATS_PASS; wrong or missing credentials fail clearly',
  async (t) => {
    const nats = await startNats({ config: 'authorization { user: bosun, password: s3cret }' })
    closers.push(() => nats.close())
    const cluster = await clusterOn(nats, zkServer, { NATS_USER: 'bosun', NATS_PASS: 's3cret' })
    t.equal(await healthProblem(cluster), undefined, 'jobs run over the authenticated connection')

    const refused = /refused our credentials|[Aa]uthorization/
    // In parallel: process start-up is the slow part on a loaded machine.
    await Promise.all([
      mustFailToStart(t, cluster, { NATS_PASS: 'wrong' }, 'dist/worker/main.js', refused),
      mustFailToStart(t, cluster, { NATS_USER: '', NATS_PASS: '' }, 'dist/worker/main.js', refused),
      mustFailToStart(t, cluster, { NATS_USER: 'intruder', NATS_PASS: 's3cret' }, 'dist/api/main.js', refused),
      mustFailToStart(
        t,
        cluster,
        { NATS_USER: '', NATS_PASS: '', NATS_TOKEN: 's3cret' },
        'dist/worker/main.js',
        refused,
      ),
    ])
    t.same(deadProcesses(cluster), [], 'the running cluster is unaffected')
    t.equal(await healthProblem(cluster), undefined, 'and still runs jobs')
  },
)

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: certDir, stdio: 'pipe' })
}

/** A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated second CA. */
function makeCertificates(): { ca: string; cert: string; key: string; otherCa: string } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bosun test CA')
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  writeFileSync(
    join(certDir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' +
      'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  )
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  )
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'other.key',
    '-out',
    'other-ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=some other CA',
  )
  return {
    ca: join(certDir, 'ca.pem'),
    cert: join(certDir, 'server.pem'),
    key: join(certDir, 'server.key'),
    otherCa: join(certDir, 'other-ca.pem'),
  }
}

t.test(
  'TLS: the cluster runs over tls:// with NATS_TLS_CA; an untrusted server certificate fails clearly',
  async (t) => {
    const pki = makeCertificates()
    const nats = await startNats({ config: `tls { cert_file: "${pki.cert}", key_file: "${pki.key}" }` })
    closers.push(() => nats.close())
    const url = `tls://127.0.0.1:${nats.server.port}`
    const cluster = await clusterOn(nats, zkServer, { NATS_URL: url, NATS_TLS_CA: pki.ca })
    t.equal(await healthProblem(cluster), undefined, 'jobs run over TLS')

    const tlsFailure = /certificate|TLS|SSL|self[- ]signed|verify/i
    await Promise.all([
      mustFailToStart(t, cluster, { NATS_URL: url, NATS_TLS_CA: pki.otherCa }, 'dist/worker/main.js', tlsFailure),
      mustFailToStart(
        t,
        cluster,
        { NATS_URL: url, NATS_TLS_CA: join(certDir, 'missing.pem') },
        'dist/worker/main.js',
        /missing\.pem|ENOENT|TLS/,
      ),
      // No CA given: the system trust store does not know the test CA.
      mustFailToStart(t, cluster, { NATS_URL: url, NATS_TLS_CA: '' }, 'dist/api/main.js', tlsFailure),
    ])
    t.same(deadProcesses(cluster), [], 'the running cluster is unaffected')
  },
)
