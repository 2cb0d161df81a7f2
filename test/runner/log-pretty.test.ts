/**
 * LOG_PRETTY=true (what `npm start` sets): one line per log event through the real pino transport
 * of the built processes (dist/runner/log-pretty.js) — time, level, [component], message, plain
 * fields as key=value, an error's code and message — never a multi-line dump or stack.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { oneLine } from '../../runner/log-pretty.js'
import { ROOT } from '../helpers/processes.js'

const LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  })
  return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '')
}

t.test('a log event with fields, an error and a multi-line message: one line each', async (t) => {
  const logger = join(ROOT, 'dist', 'runner', 'logger.js')
  const script = `
    const { createLogger } = await import(${JSON.stringify(logger)})
    const log = createLogger({ pretty: true, name: 'bosun-worker' }).child({ component: 'boss' })
    log.info({ epoch: 7, jobs: 3, worker: 'worker-2', nested: { a: 1 } }, 'became the acting boss')
    const e = new Error('boom\\nsecond line'); e.code = 'BOSUN_ERR_X'
    log.warn({ err: e, reason: 'session expired' }, 'deposed')
    log.info('multi\\nline message')`
  // a file, not `-e`: pino's transport thread inherits the process's exec arguments
  const dir = mkdtempSync(join(tmpdir(), 'bosun-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'log.mjs'), script)
  const lines = run([join(dir, 'log.mjs')])
  t.equal(lines.length, 3, lines.join('\n'))
  for (const l of lines) t.match(l, LINE)
  t.match(lines[0], /INFO: \[boss\] became the acting boss {2}epoch=7 jobs=3 worker=worker-2$/)
  t.match(lines[1], /WARN: \[boss\] deposed {2}reason="session expired" err="BOSUN_ERR_X: boom\\nsecond line"$/)
  t.match(lines[2], /INFO: \[boss\] multi line message$/)
})

t.test('a worker that cannot start logs why in one line per event', async (t) => {
  const lines = run([join(ROOT, 'dist', 'worker', 'main.js')], {
    LOG_PRETTY: 'true',
    ZK_CONNECT: '127.0.0.1:1',
    NATS_URL: 'nats://127.0.0.1:1',
    ZK_CONNECT_TIMEOUT_MS: '1000',
  })
  t.ok(lines.length > 0, 'it said something')
  t.same(
    lines.filter((l) => !LINE.test(l)),
    [],
    'every line is a whole log event (no stack or object continuation lines)',
  )
  t.ok(
    lines.some((l) => /(ERROR|FATAL): .*err=/.test(l)),
    `the failure with its error: ${lines.join('\n')}`,
  )
})

t.test('oneLine: long values cut, at most 10 fields, objects left out', async (t) => {
  const log: Record<string, unknown> = { msg: 'm', component: 'c', long: 'x'.repeat(200), obj: { a: 1 } }
  for (let i = 0; i < 15; i++) log[`f${i}`] = i
  const line = oneLine(log, 'msg')
  t.match(line, /^\[c\] m {2}long=x{79}… f0=0 /)
  t.equal(line.split(' ').filter((w) => w.includes('=')).length, 10)
  t.notMatch(line, /obj=/)
})
