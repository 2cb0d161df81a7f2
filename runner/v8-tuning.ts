/**
 * Applies `runner/v8-flags.ts` to this process. Imported first by `api/main.ts` and
 * `worker/main.ts`, so the flags are set before the code they tune is loaded (Node 20 refuses these
 * flags in NODE_OPTIONS, and a Procfile or unit file that forgets them on the command line would
 * lose them). Worker threads share the process's flags. A flag given on the command line wins.
 */
import { setFlagsFromString } from 'node:v8'
import { BOSUN_V8_FLAGS } from './v8-flags.js'

for (const flag of BOSUN_V8_FLAGS) {
  const name = flag.split('=')[0]!
  if (!process.execArgv.some((a) => a === name || a.startsWith(`${name}=`))) setFlagsFromString(flag)
}
