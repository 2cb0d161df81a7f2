/**
 * The hostile inputs of test/hostile/api-fuzz.test.ts as fast-check arbitraries: spec-shaped objects
 * with wrong values and stray keys, JSON texts and raw bytes (invalid UTF-8 among them), content
 * types, query strings and path ids.
 */
import fc from 'fast-check'

const FUNCTIONS = ['echo', 'noop', 'fail', 'nosuch', 'Echo', '../echo', 'echo/../echo', '', 'a'.repeat(65)]
const hugeString = fc.constantFrom('x'.repeat(100_000), '\u{1F600}'.repeat(20_000), '\u0000'.repeat(1000))
const hugeNumber = fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, -(2 ** 63), 5e-324, 0.1)
const wrongType = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
  hugeString,
  hugeNumber,
)
const smallInt = (max: number) => fc.oneof(fc.integer({ min: 0, max }), fc.constantFrom(-1, max + 1))

/** Mostly spec-shaped objects with wrong values and stray keys, so some are accepted. */
export const specish = fc.record(
  {
    function: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FUNCTIONS) }, { weight: 1, arbitrary: wrongType }),
    payload: fc.oneof(fc.jsonValue({ maxDepth: 3 }), hugeString, hugeNumber),
    idempotencyKey: fc.oneof(fc.string({ minLength: 0, maxLength: 6 }), wrongType),
    priority: fc.oneof(smallInt(1000), wrongType),
    delayMs: fc.oneof(smallInt(50), wrongType),
    timeoutMs: fc.oneof(smallInt(5000), wrongType),
    maxAttempts: fc.oneof(smallInt(3), wrongType),
    extra: wrongType,
  },
  { requiredKeys: [] },
)

/** Bodies as text: JSON of arbitrary values, spec-ish objects, and hand-made hostile texts. */
const jsonText = fc.oneof(
  { weight: 3, arbitrary: specish.map((s) => JSON.stringify(s)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.array(specish, { maxLength: 4 }).map((jobs) => JSON.stringify({ jobs })) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '{"function":"echo","payload":{"__proto__":{"polluted":true}}}',
      '{"function":"echo","__proto__":{"function":"fail"}}',
      '{"function":"echo","payload":{"constructor":{"prototype":{"polluted":true}}}}',
      '{"function":"echo","payload":1e400}',
      '{"function":"echo","priority":1e400}',
      '{"function":"echo","maxAttempts":-1e400}',
      '{"function":"echo","timeoutMs":1.0000000000000001}',
      '{"function":"echo","payload":"\\ud800"}',
      '{"function":"echo","payload":"\\u0000"}',
      '{"function":"echo","function":"fail"}',
      '{"function":"echo",}',
      '{"function":"echo"',
      "{'function':'echo'}",
      'null',
      '[]',
      '""',
      '',
      ' ',
      '\ufeff{"function":"echo"}',
      '{"jobs":[]}',
      '{"jobs":null}',
      `{"jobs":[${Array(1001).fill('{"function":"echo"}').join(',')}]}`,
    ),
  },
  {
    weight: 1,
    // Deeper nesting is tested deterministically below ('deeply nested payloads').
    arbitrary: fc
      .constantFrom(100, 1000)
      .chain((depth) =>
        fc.constantFrom(
          '['.repeat(depth) + ']'.repeat(depth),
          `{"function":"echo","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`,
          `{"function":"echo","payload":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
          `{"jobs":[{"function":"echo","payload":${'['.repeat(depth)}${']'.repeat(depth)}}]}`,
        ),
      ),
  },
)

const INVALID_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc3]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0xc0, 0xaf]),
]
/** Bodies as bytes: the texts above, random bytes, and JSON with invalid UTF-8 inside a string. */
export const bodyBytes = fc.oneof(
  { weight: 6, arbitrary: jsonText.map((s) => Buffer.from(s, 'utf8')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...INVALID_UTF8), fc.boolean())
      .map(([bad, inPayload]) =>
        inPayload
          ? Buffer.concat([Buffer.from('{"function":"echo","payload":"a'), bad, Buffer.from('b"}')])
          : Buffer.concat([Buffer.from('{"function":"ec'), bad, Buffer.from('ho"}')]),
      ),
  },
)

export const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      undefined,
      '',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'application/jsonx',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'application/octet-stream',
      'application/*',
      ';;;',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => /^[\x21-\x7e ]*$/.test(s)) },
)

/** Query strings: random text, plus the parameters the routes know with hostile values. */
const hostileValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '',
    '-1',
    '0',
    '1',
    '1000',
    '1001',
    '1e3',
    '0x10',
    '1.5',
    'NaN',
    'Infinity',
    '9'.repeat(400),
    'queued',
    'succeeded',
    'echo',
    '%00',
    '%ZZ',
    '[]',
    '{}',
  ),
)
export const queryString = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => encodeURI(s).replace(/#/g, '%23')),
  fc
    .array(
      fc.tuple(
        fc.constantFrom(
          'state',
          'function',
          'limit',
          'wait',
          '__proto__',
          'constructor[prototype][x]',
          'limit[]',
          'state[0]',
          'x',
        ),
        hostileValue,
      ),
      { maxLength: 4 },
    )
    .map((pairs) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')),
  fc.constantFrom('limit=1&limit=2', 'state=queued&state=failed', '&&&', '=', '==x', 'a'.repeat(5000)),
)

/** Path ids: random text (URL-encoded), plausible ids, and traversal / encoding tricks. */
export const pathId = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }).map((s) => encodeURIComponent(s)),
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/),
  fc.constantFrom(
    '..',
    '..%2F..%2Fetc%2Fpasswd',
    '%2e%2e',
    '%00',
    '%ZZ',
    '%',
    'a'.repeat(101),
    'a'.repeat(5000),
    'jobs.garbage',
    '*',
    '>',
    'x%20y',
    '%F0%9F%98%80',
    '__proto__',
    'constructor',
    'null',
    'undefined',
  ),
)

/** Submit wait values: never long, so a held request cannot stall the run. */
export const submitQuery = fc.oneof(
  fc.constant(''),
  fc.constantFrom('?wait=0', '?wait=200', '?wait=-1', '?wait=abc', '?wait=1e2', '?wait=99999999', '?wait=', '?x=1'),
  queryString.map((q) => `?${q}`),
)
