#!/usr/bin/env node
/**
 * Runs before `npm test` / `npm start` (node builtins only: npm dependencies may not exist yet).
 *
 * - node_modules missing            → `npm ci`
 * - ZooKeeper, nats-server or java missing (or Chromium, for the dashboard test, except under `npm start`):
 *     root with apt-get, or BOSUN_INSTALL=1 → `apt-get update && apt-get install -y …` (sudo when not root)
 *     otherwise (or BOSUN_INSTALL=0)        → print the exact command and exit 1
 *
 * Idempotent; prints nothing when everything is present.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ZK_JAR = '/usr/share/java/zookeeper.jar'
const NATS_BIN = '/usr/sbin/nats-server'
const CHROMIUM_BIN = '/usr/bin/chromium'
/** test/ui drives a headless Chromium: `npm test` needs it, the local cluster (`npm start`, a bench) does not. */
const WANT_CHROMIUM = !['start', 'bench:compare'].includes(process.env.npm_lifecycle_event ?? '')

/** Is `name` an executable file somewhere on PATH? */
function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, name), constants.X_OK)
      return true
    } catch {
      /* not here */
    }
  }
  return false
}

/** Run a command with inherited stdio; exit with its status when it fails. */
function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts })
  if (res.error) {
    console.error(`ensure-servers: cannot run ${cmd}: ${res.error.message}`)
    process.exit(1)
  }
  if (res.status !== 0) {
    console.error(`ensure-servers: \`${[cmd, ...args].join(' ')}\` failed (status ${res.status ?? res.signal})`)
    process.exit(res.status ?? 1)
  }
}

function ensureNodeModules() {
  if (existsSync(join(ROOT, 'node_modules'))) return
  console.error('ensure-servers: node_modules is missing, running `npm ci`')
  run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['ci'])
}

/** Debian packages still needed for ZooKeeper, nats-server, a JRE (and Chromium). */
function missingPackages() {
  const missing = []
  if (!existsSync(ZK_JAR)) missing.push('zookeeper')
  if (!existsSync(NATS_BIN) && !onPath('nats-server')) missing.push('nats-server')
  if (!onPath('java')) missing.push('default-jre-headless')
  if (WANT_CHROMIUM && !existsSync(CHROMIUM_BIN)) missing.push('chromium')
  return missing
}

function ensureServers() {
  const missing = missingPackages()
  if (missing.length === 0) return
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  const hasApt = onPath('apt-get')
  const wanted = process.env.BOSUN_INSTALL
  const install = wanted === '1' || (wanted !== '0' && isRoot && hasApt)
  const sudo = isRoot ? '' : 'sudo '
  const aptInstall = `${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing.join(' ')}`
  const command = `${sudo}apt-get update && ${aptInstall}`
  if (!install || !hasApt) {
    console.error(`ensure-servers: missing ${missing.join(', ')} (needed by the tests and the local cluster).`)
    console.error(
      hasApt
        ? `Install them with:\n\n  ${command}\n\nor rerun with BOSUN_INSTALL=1 to let this script do it.`
        : 'Install ZooKeeper 3.8 (zookeeper.jar in /usr/share/java), nats-server 2.9+, a Java 17 runtime ' +
            '(and Chromium at /usr/bin/chromium for the tests).',
    )
    process.exit(1)
  }
  console.error(`ensure-servers: installing ${missing.join(' ')}`)
  run('sh', ['-c', command], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  const still = missingPackages()
  if (still.length > 0) {
    console.error(`ensure-servers: still missing after install: ${still.join(', ')}`)
    process.exit(1)
  }
}

ensureNodeModules()
ensureServers()
