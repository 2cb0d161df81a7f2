/**
 * Property tests: random bodies to POST /jobs and POST /jobs/batch never yield a 5xx, every error
 * is in the error shape, and the service is called exactly for the valid ones (judged by an
 * oracle written here independently of the schemas).
 */
import fc from 'fast-check'
import t from 'tap'
import { MAX_DELAY_MS, MAX_MAX_ATTEMPTS, MAX_PRIORITY, MAX_TIMEOUT_MS, MIN_PRIORITY } from '../../jobs/model.js'
import { errorShape, makeApp, rawJson } from './helpers.js'

const NUM_RUNS = 300

// ---- oracle -------------------------------------------------------------------------------------
const SPEC_KEYS = new Set(['function', 'payload', 'idempotencyKey', 'priority', 'delayMs', 'timeoutMs', 'maxAttempts'])
const isInt = (v: unknown, min: number, max: number) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A `__proto__` key, or `constructor` holding an object with `prototype`, anywhere in the value. */
function poisoned(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(poisoned)
  if (!isRecord(v)) return false
  for (const [k, child] of Object.entries(v)) {
    if (k === '__proto__') return true
    if (k === 'constructor' && isRecord(child) && Object.hasOwn(child, 'prototype')) return true
    if (poisoned(child)) return true
  }
  return false
}

function validSpec(b: unknown): boolean {
  if (!isRecord(b)) return false
  if (Object.keys(b).some((k) => !SPEC_KEYS.has(k))) return false
  if (typeof b.function !== 'string' || !/^[a-z][a-z0-9_-]{0,63}$/.test(b.function)) return false
  if (
    b.idempotencyKey !== undefined &&
    (typeof b.idempotencyKey !== 'string' || [...b.idempotencyKey].length < 1 || [...b.idempotencyKey].length > 256)
  )
    return false
  if (b.priority !== undefined && !isInt(b.priority, MIN_PRIORITY, MAX_PRIORITY)) return false
  if (b.delayMs !== undefined && !isInt(b.delayMs, 0, MAX_DELAY_MS)) return false
  if (b.timeoutMs !== undefined && !isInt(b.timeoutMs, 1, MAX_TIMEOUT_MS)) return false
  if (b.maxAttempts !== undefined && !isInt(b.maxAttempts, 1, MAX_MAX_ATTEMPTS)) return false
  return true
}

/** Index of the first bad item when the batch envelope itself is fine, else undefined. */
function firstBadItem(b: unknown): number | undefined {
  if (
    !isRecord(b) ||
    Object.keys(b).length !== 1 ||
    !Array.isArray(b.jobs) ||
    b.jobs.length < 1 ||
    b.jobs.length > 1000
  )
    return undefined
  const i = b.jobs.findIndex((j) => !validSpec(j))
  return i === -1 ? undefined : i
}
const validBatch = (b: unknown): boolean =>
  isRecord(b) &&
  Object.keys(b).length === 1 &&
  Array.isArray(b.jobs) &&
  b.jobs.length >= 1 &&
  b.jobs.length <= 1000 &&
  b.jobs.every(validSpec)

// ---- generators ---------------------------------------------------------------------------------
const anyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.integer({ min: -2000, max: 2000 }),
  fc.constantFrom(0, -0, 1, MAX_DELAY_MS + 1, 2 ** 53, 1e21),
)
const junk = fc.oneof(
  fc.string({ maxLength: 10 }),
  anyNumber,
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.object({ maxDepth: 1 }),
)
const functionName = fc.oneof(
  fc.constantFrom(
    'echo',
    'sleep',
    'fail',
    'nosuch',
    'a',
    'a'.repeat(64),
    'a'.repeat(65),
    'Echo',
    '1x',
    '',
    'x y',
    'e\u0301cho',
  ),
  fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/),
  fc.string({ maxLength: 12 }),
)
const key = fc.oneof(
  fc.string({ minLength: 0, maxLength: 8 }),
  fc.constant('k'.repeat(256)),
  fc.constant('k'.repeat(257)),
  fc.string({ unit: 'binary', maxLength: 4 }),
)
const intIn = (min: number, max: number) =>
  fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max, min - 1, max + 1))

/** Mostly valid-looking specs with wrong values and stray keys mixed in. */
const specish = fc
  .tuple(
    fc.record(
      {
        function: fc.oneof({ weight: 4, arbitrary: functionName }, { weight: 1, arbitrary: junk }),
        payload: fc.jsonValue({ maxDepth: 3 }),
        idempotencyKey: fc.oneof({ weight: 3, arbitrary: key }, { weight: 1, arbitrary: junk }),
        priority: fc.oneof({ weight: 3, arbitrary: intIn(MIN_PRIORITY, MAX_PRIORITY) }, { weight: 1, arbitrary: junk }),
        delayMs: fc.oneof({ weight: 3, arbitrary: intIn(0, MAX_DELAY_MS) }, { weight: 1, arbitrary: junk }),
        timeoutMs: fc.oneof({ weight: 3, arbitrary: intIn(1, MAX_TIMEOUT_MS) }, { weight: 1, arbitrary: junk }),
        maxAttempts: fc.oneof({ weight: 3, arbitrary: intIn(1, MAX_MAX_ATTEMPTS) }, { weight: 1, arbitrary: junk }),
      },
      { requiredKeys: [] },
    ),
    fc.option(
      fc.dictionary(
        fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'Function', 'payload ')),
        junk,
        { maxKeys: 2 },
      ),
      { freq: 4 },
    ),
  )
  .map(([spec, extra]) => (extra === null ? spec : { ...spec, ...extra }))

/** Specs the oracle should accept (all fields in range). */
const goodSpec = fc.record(
  {
    function: fc.oneof(fc.constantFrom('echo', 'sleep', 'nosuch'), fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/)),
    payload: fc.jsonValue({ maxDepth: 3 }),
    idempotencyKey: fc.string({ minLength: 1, maxLength: 20 }),
    priority: fc.integer({ min: MIN_PRIORITY, max: MAX_PRIORITY }),
    delayMs: fc.integer({ min: 0, max: MAX_DELAY_MS }),
    timeoutMs: fc.integer({ min: 1, max: MAX_TIMEOUT_MS }),
    maxAttempts: fc.integer({ min: 1, max: MAX_MAX_ATTEMPTS }),
  },
  { requiredKeys: ['function'] },
)

const body = fc.oneof(
  { weight: 3, arbitrary: goodSpec },
  { weight: 5, arbitrary: specish },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
)
const item = fc.oneof({ weight: 6, arbitrary: goodSpec }, { weight: 1, arbitrary: specish })
const batchBody = fc.oneof(
  { weight: 5, arbitrary: fc.record({ jobs: fc.array(item, { minLength: 0, maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ jobs: fc.array(specish, { maxLength: 3 }), extra: junk }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
)

/** The JSON text actually sent, and what the server will parse from it. */
function wire(value: unknown): { text: string; parsed: unknown } {
  const text = JSON.stringify(value) ?? 'null'
  return { text, parsed: JSON.parse(text) }
}

t.test('POST /jobs: random bodies never 5xx; only valid specs reach the service', async (t) => {
  const { inject, service } = await makeApp(t)
  let valid = 0
  let invalid = 0
  await fc.assert(
    fc.asyncProperty(body, async (value) => {
      const { text, parsed } = wire(value)
      const before = service.calls.submit.length
      const res = await inject(rawJson('/jobs', text))
      if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${text}: ${res.body}`)
      const ok = !poisoned(parsed) && validSpec(parsed)
      if (ok) {
        valid++
        if (service.calls.submit.length !== before + 1)
          throw new Error(`valid spec not submitted: ${text} → ${res.statusCode} ${res.body}`)
        if (JSON.stringify(service.calls.submit.at(-1)?.spec) !== text)
          throw new Error(`spec altered: ${text} → ${JSON.stringify(service.calls.submit.at(-1)?.spec)}`)
        if (res.statusCode !== 202 && res.statusCode !== 404)
          throw new Error(`valid spec answered ${res.statusCode}: ${text}`)
      } else {
        invalid++
        if (service.calls.submit.length !== before) throw new Error(`invalid spec reached the service: ${text}`)
        if (res.statusCode !== 400) throw new Error(`invalid spec answered ${res.statusCode}: ${text} ${res.body}`)
      }
      if (res.statusCode >= 400) errorShape(res)
    }),
    { numRuns: NUM_RUNS },
  )
  t.ok(valid > NUM_RUNS / 10, `enough valid cases (${valid})`)
  t.ok(invalid > NUM_RUNS / 5, `enough invalid cases (${invalid})`)
})

t.test(
  'POST /jobs/batch: random batches never 5xx; a bad batch is rejected whole with the first bad index',
  async (t) => {
    const { inject, service } = await makeApp(t)
    let valid = 0
    let indexed = 0
    await fc.assert(
      fc.asyncProperty(batchBody, async (value) => {
        const { text, parsed } = wire(value)
        const before = service.calls.submitBatch.length
        const res = await inject(rawJson('/jobs/batch', text))
        if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${text}: ${res.body}`)
        if (!poisoned(parsed) && validBatch(parsed)) {
          valid++
          if (service.calls.submitBatch.length !== before + 1) throw new Error(`valid batch not submitted: ${text}`)
          if (res.statusCode !== 202 && res.statusCode !== 404)
            throw new Error(`valid batch answered ${res.statusCode}: ${text}`)
        } else {
          if (service.calls.submitBatch.length !== before) throw new Error(`invalid batch reached the service: ${text}`)
          if (res.statusCode !== 400) throw new Error(`invalid batch answered ${res.statusCode}: ${text}`)
          const bad = poisoned(parsed) ? undefined : firstBadItem(parsed)
          if (bad !== undefined) {
            indexed++
            const err = errorShape(res)
            if (err.details?.index !== bad || !err.message.startsWith(`jobs[${bad}] is invalid`)) {
              throw new Error(`expected index ${bad} for ${text}, got ${res.body}`)
            }
          }
        }
        if (res.statusCode >= 400) errorShape(res)
      }),
      { numRuns: NUM_RUNS },
    )
    t.ok(valid > NUM_RUNS / 10, `enough valid batches (${valid})`)
    t.ok(indexed > NUM_RUNS / 10, `enough batches with a bad item (${indexed})`)
  },
)

t.test('arbitrary text, content types and query strings never 5xx and never submit when rejected', async (t) => {
  const { inject, service } = await makeApp(t)
  const contentType = fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/octet-stream',
    '',
    'application/json;',
    'APPLICATION/JSON',
  )
  const query = fc.oneof(
    fc.constant(''),
    fc.string({ maxLength: 12 }).map((s) => `?wait=${encodeURIComponent(s)}`),
    fc.string({ maxLength: 12 }).map((s) => `?${encodeURIComponent(s)}=1`),
  )
  await fc.assert(
    fc.asyncProperty(
      fc.string({ maxLength: 40 }),
      contentType,
      query,
      fc.constantFrom('/jobs', '/jobs/batch'),
      async (text, ct, q, path) => {
        const before = service.calls.submit.length + service.calls.submitBatch.length
        const res = await inject({
          method: 'POST',
          url: `${path}${q}`,
          payload: text,
          headers: ct === '' ? {} : { 'content-type': ct },
        })
        if (res.statusCode >= 500)
          throw new Error(`${res.statusCode} for ${ct} ${path}${q} ${JSON.stringify(text)}: ${res.body}`)
        const after = service.calls.submit.length + service.calls.submitBatch.length
        if (res.statusCode >= 400) {
          errorShape(res)
          if (res.statusCode !== 404 && after !== before)
            throw new Error(`rejected (${res.statusCode}) yet submitted: ${JSON.stringify(text)}`)
        }
      },
    ),
    { numRuns: NUM_RUNS },
  )
  t.pass('no 5xx')
})
