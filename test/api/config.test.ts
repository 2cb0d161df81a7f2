/** The API's env spec: defaults, validation, and the loopback-unless-authenticated rule. */
import t from 'tap'
import { isLoopbackHost, loadApiConfig, describeApiEnv } from '../../api/config.js'
import { errors } from '../../runner/errors.js'

const TOKEN = '0123456789abcdef0123'

t.test('defaults', async (t) => {
  const c = loadApiConfig({})
  t.same(c, {
    port: 3000,
    host: '127.0.0.1',
    apiTokens: [],
    insecure: false,
    bodyLimitBytes: 1048576,
    maxWaitMs: 60000,
    rateLimit: undefined,
    noBossWaitMs: 2000,
    maxQueuedJobs: 100000,
    requestTimeoutMs: 10000,
    keepAliveTimeoutMs: 72000,
    metrics: true,
    callbackAllow: { any: false, hosts: new Map() },
  })
  t.ok(Object.isFrozen(c))
})

t.test('values are parsed', async (t) => {
  const c = loadApiConfig({
    PORT: '8080',
    HOST: '::1',
    BOSUN_API_TOKENS: `${TOKEN}, ${TOKEN}x ,`,
    API_BODY_LIMIT_BYTES: '4096',
    API_MAX_WAIT_MS: '1000',
    API_RATE_LIMIT_PER_MIN: '120',
    API_NO_BOSS_WAIT_MS: '500',
    API_METRICS: 'false',
  })
  t.equal(c.port, 8080)
  t.equal(c.host, '::1')
  t.same(c.apiTokens, [TOKEN, `${TOKEN}x`])
  t.equal(c.bodyLimitBytes, 4096)
  t.equal(c.maxWaitMs, 1000)
  t.same(c.rateLimit, { max: 120, timeWindowMs: 60000 })
  t.equal(c.noBossWaitMs, 500)
  t.equal(c.metrics, false)
})

t.test('bad values are one clear config error listing each', async (t) => {
  const err = t.throws(() =>
    loadApiConfig({ PORT: '70000', API_MAX_WAIT_MS: 'soon', BOSUN_API_TOKENS: 'short', API_RATE_LIMIT_PER_MIN: '-1' }),
  ) as Error & { code?: string }
  t.equal(err.code, errors.CONFIG.code)
  t.match(err.message, /PORT=70000 is above the maximum/)
  t.match(err.message, /API_MAX_WAIT_MS="soon" is not an integer/)
  t.match(err.message, /BOSUN_API_TOKENS item "short" is invalid/)
  t.match(err.message, /API_RATE_LIMIT_PER_MIN=-1 is below the minimum/)
})

t.test('a non-loopback HOST needs tokens or an explicit BOSUN_API_INSECURE=true', async (t) => {
  for (const host of ['0.0.0.0', '::', '10.0.0.5', 'api.example.com']) {
    const err = t.throws(() => loadApiConfig({ HOST: host })) as Error & { code?: string }
    t.equal(err.code, errors.CONFIG.code, host)
    t.match(err.message, /not a loopback address and BOSUN_API_TOKENS is empty/)
    t.equal(loadApiConfig({ HOST: host, BOSUN_API_TOKENS: TOKEN }).host, host, `${host} with a token`)
    t.equal(loadApiConfig({ HOST: host, BOSUN_API_INSECURE: 'true' }).insecure, true, `${host} insecure on purpose`)
  }
  t.throws(() => loadApiConfig({ HOST: '0.0.0.0', BOSUN_API_INSECURE: 'false' }))
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) {
    t.ok(isLoopbackHost(host), host)
    t.equal(loadApiConfig({ HOST: host }).host, host)
  }
  for (const host of ['0.0.0.0', '::', '128.0.0.1', 'localhost.example.com', '1.127.0.0'])
    t.notOk(isLoopbackHost(host), host)
})

t.test('describeApiEnv documents every variable', async (t) => {
  const doc = describeApiEnv()
  for (const name of [
    'PORT',
    'HOST',
    'BOSUN_API_TOKENS',
    'BOSUN_API_INSECURE',
    'API_BODY_LIMIT_BYTES',
    'API_MAX_WAIT_MS',
    'API_RATE_LIMIT_PER_MIN',
    'API_NO_BOSS_WAIT_MS',
  ]) {
    t.match(doc, `| \`${name}\` |`)
  }
})
