#!/usr/bin/env node
/**
 * `bosun` — the command line of a bosun cluster, over its HTTP API (BOSUN_URL, default
 * http://127.0.0.1:3000; BOSUN_TOKEN when the API wants a bearer token). `bosun help` lists the
 * commands. Exit codes: 0 done, 1 refused or not found (401, 404, 4xx), 2 bad usage, 3 the API
 * unreachable or failing. Arguments are parsed with node:util's parseArgs (no dependency).
 */
import { parseArgs } from 'node:util'
import * as cmd from './commands.js'
import { apiClient, CliError, EXIT } from './http.js'

const USAGE = `usage: bosun <command> [options]   (BOSUN_URL, BOSUN_TOKEN; --json for scripts)

  submit <function> [--payload JSON|@file] [--wait MS] [--priority N] [--timeout-ms MS]
                    [--max-attempts N] [--delay-ms MS] [--key IDEMPOTENCY_KEY]
  get <job id>
  jobs [--state S] [--function F] [--limit N] [--cursor C] [--watch]
  cancel <job id>
  cluster                       the boss (epoch, for how long) and the workers
  cluster events [--follow] [--type T] [--since ISO] [--limit N] [--cursor C]
  leadership                    every boss term: start, end, how it ended, the gap before it
  top                           live: the cluster and its latest events (Ctrl-C to quit)
`

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  payload: { type: 'string' },
  wait: { type: 'string' },
  priority: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'max-attempts': { type: 'string' },
  'delay-ms': { type: 'string' },
  key: { type: 'string' },
  state: { type: 'string' },
  function: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  type: { type: 'string' },
  since: { type: 'string' },
  watch: { type: 'boolean' },
  follow: { type: 'boolean' },
} as const

export async function run(argv: string[], env: NodeJS.ProcessEnv, print: (s: string) => void): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    print(`${(err as Error).message}\n\n${USAGE}`)
    return EXIT.usage
  }
  const {
    values: o,
    positionals: [command, ...rest],
  } = parsed
  if (o.help || command === undefined || command === 'help') {
    print(USAGE)
    return command === undefined && !o.help ? EXIT.usage : 0
  }
  const stop = new AbortController()
  const onSigint = () => stop.abort()
  process.once('SIGINT', onSigint)
  const out = { json: o.json === true, print, signal: stop.signal }
  const api = apiClient(env.BOSUN_URL || 'http://127.0.0.1:3000', env.BOSUN_TOKEN || undefined)
  const need = (what: string): string => {
    if (rest[0] === undefined) throw new CliError(`${command} needs a ${what}\n\n${USAGE}`, EXIT.usage)
    return rest[0]
  }
  try {
    if (command === 'submit') await cmd.submit(api, out, need('function name'), o)
    else if (command === 'get') await cmd.get(api, out, need('job id'))
    else if (command === 'cancel') await cmd.cancel(api, out, need('job id'))
    else if (command === 'jobs') await cmd.jobs(api, out, o)
    else if (command === 'cluster' && rest[0] === 'events') await cmd.events(api, out, o)
    else if (command === 'cluster' && rest[0] === undefined) await cmd.cluster(api, out)
    else if (command === 'leadership') await cmd.leadership(api, out)
    else if (command === 'top') await cmd.top(api, out)
    else throw new CliError(`unknown command: ${[command, ...rest].join(' ')}\n\n${USAGE}`, EXIT.usage)
    return 0
  } catch (err) {
    if (!(err instanceof CliError)) throw err
    print(`bosun: ${err.message}`)
    return err.exitCode
  } finally {
    process.off('SIGINT', onSigint)
  }
}

const self = process.argv[1] ?? ''
if (self.endsWith('/cli/main.js') || self.endsWith('/bosun')) {
  const code = await run(process.argv.slice(2), process.env, (s) =>
    process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  )
  process.exitCode = code
}
