/**
 * Applies `runner/v8-flags.ts` to this process. Imported first by `api/main.ts` and
 * `worker/main.ts`, so the flags are set before the code they tune is loaded (Node 20 refuses these
 * flags in NODE_OPTIONS, and a Procfile or unit file that forgets them on the command line would
 * lose them). Worker threads share the process's flags. A flag given on the command line wins.
 */
import { setFlagsFromString } from 'node:v8'
import { BOSUN_V8_FLAGS } from './v8-flags.js'

/** A flag's name as V8 reads it: `--interrupt_budget` and `--interrupt-budget` are the same flag. */
const flagName = (arg: string) => arg.split('=')[0]!.replace(/_/g, '-')

const given = new Set(process.execArgv.map(flagName))
for (const flag of BOSUN_V8_FLAGS) if (!given.has(flagName(flag))) setFlagsFromString(flag)
