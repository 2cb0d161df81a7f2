import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, realpathSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_FUNCTIONS_DIR, loadCatalog } from '../../worker/executor/index.js'
import { isBosunError, errors } from '../../runner/errors.js'
import { captureLogger, tempDir } from './helpers.js'

const src = 'export default async (p) => p\n'

t.test('the bundled functions folder holds echo, sleep, fail', async (t) => {
  const { logger } = captureLogger()
  const cat = await loadCatalog(DEFAULT_FUNCTIONS_DIR, logger)
  for (const name of ['echo', 'sleep', 'fail']) t.ok(cat.names.includes(name), name)
  t.equal(cat.resolve('echo'), join(realpathSync(DEFAULT_FUNCTIONS_DIR), 'echo.mjs'))
  t.match(DEFAULT_FUNCTIONS_DIR, /worker[/\\]functions$/)
})

t.test('valid names are listed sorted; bad names, other extensions and non-files are ignored', async (t) => {
  const dir = tempDir(t, {
    'zeta.js': src,
    'alpha.mjs': src,
    'with-dash_and_1.mjs': src,
    ['a' + 'b'.repeat(63) + '.mjs']: src, // 64 characters: the longest allowed
    ['a' + 'b'.repeat(64) + '.mjs']: src, // 65: too long
    'Upper.mjs': src,
    '1digit.mjs': src,
    '_under.mjs': src,
    'has.dot.mjs': src,
    'space name.mjs': src,
    '.hidden.mjs': src,
    'common.cjs': src,
    'types.ts': src,
    'README.md': 'not a function',
    noext: src,
    'folder.mjs': { 'index.mjs': src },
  })
  const { logger, lines } = captureLogger()
  const cat = await loadCatalog(dir, logger)
  t.same(cat.names, ['a' + 'b'.repeat(63), 'alpha', 'with-dash_and_1', 'zeta'])
  t.equal(cat.resolve('zeta'), join(realpathSync(dir), 'zeta.js'))
  t.equal(cat.resolve('Upper'), undefined)
  t.equal(cat.resolve('folder'), undefined)
  t.equal(cat.resolve('common'), undefined)
  t.equal(cat.has('alpha'), true)
  t.equal(cat.has('nope'), false)
  t.ok(Object.isFrozen(cat.names), 'names cannot be changed by a caller')
  const ignored = lines.filter((l) => /ignored/.test(String(l.msg))).map((l) => l.file)
  t.ok(ignored.includes('Upper.mjs') && ignored.includes('folder.mjs'), 'ignored files are logged')
})

t.test('resolve never walks out of the folder', async (t) => {
  const dir = tempDir(t, { 'echo.mjs': src })
  const cat = await loadCatalog(dir, captureLogger().logger)
  for (const name of ['../echo', '..', '../../etc/passwd', 'echo.mjs', '/etc/passwd', 'echo/..', '']) {
    t.equal(cat.resolve(name), undefined, JSON.stringify(name))
  }
})

t.test('symbolic links: followed inside the folder, rejected when they escape or dangle', async (t) => {
  const root = tempDir(t, {
    outside: { 'secret.mjs': src, dir: {} },
    fns: { 'real.mjs': src, sub: { 'deep.mjs': src } },
  })
  const fns = join(root, 'fns')
  symlinkSync(join(fns, 'real.mjs'), join(fns, 'alias.mjs')) // absolute, inside
  symlinkSync('sub/deep.mjs', join(fns, 'deep.mjs')) // relative, inside
  symlinkSync('../outside/secret.mjs', join(fns, 'escape.mjs')) // relative, outside
  symlinkSync(join(root, 'outside', 'secret.mjs'), join(fns, 'escape2.mjs')) // absolute, outside
  symlinkSync('missing.mjs', join(fns, 'dangling.mjs'))
  symlinkSync('sub', join(fns, 'linkdir.mjs')) // a folder
  symlinkSync('loop2.mjs', join(fns, 'loop1.mjs'))
  symlinkSync('loop1.mjs', join(fns, 'loop2.mjs'))
  const { logger, lines } = captureLogger()
  const cat = await loadCatalog(fns, logger)
  t.same(cat.names, ['alias', 'deep', 'real'])
  t.equal(cat.resolve('alias'), join(realpathSync(fns), 'real.mjs'), 'a link resolves to its real file')
  t.equal(cat.resolve('escape'), undefined)
  const reasons = lines
    .filter((l) => l.msg === 'function file ignored')
    .map((l) => `${String(l.file)}: ${String(l.reason)}`)
  t.match(reasons.join('\n'), /escape\.mjs: symbolic link leads outside/)
  t.match(reasons.join('\n'), /escape2\.mjs: symbolic link leads outside/)
  t.match(reasons.join('\n'), /dangling\.mjs: broken symbolic link/)
})

t.test(
  'a functions folder reached through a symbolic link works, and its links are judged by the real folder',
  async (t) => {
    const root = tempDir(t, { real: { 'one.mjs': src }, 'other.mjs': src })
    symlinkSync(join(root, 'real'), join(root, 'via'))
    symlinkSync('../other.mjs', join(root, 'real', 'two.mjs')) // escapes the real folder
    const cat = await loadCatalog(join(root, 'via'), captureLogger().logger)
    t.same(cat.names, ['one'])
    t.equal(cat.dir, realpathSync(join(root, 'real')))
  },
)

t.test('special files are ignored', async (t) => {
  const dir = tempDir(t, { 'ok.mjs': src })
  execFileSync('mkfifo', [join(dir, 'pipe.mjs')])
  mkdirSync(join(dir, 'emptydir.js'))
  const cat = await loadCatalog(dir, captureLogger().logger)
  t.same(cat.names, ['ok'])
})

t.test('echo.js and echo.mjs: .mjs wins, whatever the listing order, with a warning', async (t) => {
  const dir = tempDir(t, { 'echo.js': src, 'echo.mjs': src, 'solo.js': src })
  const { logger, lines } = captureLogger()
  const cat = await loadCatalog(dir, logger)
  t.same(cat.names, ['echo', 'solo'])
  t.equal(cat.resolve('echo'), join(realpathSync(dir), 'echo.mjs'))
  t.ok(lines.some((l) => l.level === 40 && l.function === 'echo' && /same function/.test(String(l.msg))))
})

t.test('an empty folder gives an empty catalog; a missing one is a clear config error', async (t) => {
  const dir = tempDir(t)
  const cat = await loadCatalog(dir, captureLogger().logger)
  t.same(cat.names, [])
  const err = await loadCatalog(join(dir, 'nope'), captureLogger().logger).catch((e: unknown) => e)
  t.ok(isBosunError(err, errors.CONFIG), 'BOSUN_ERR_CONFIG')
  t.match((err as Error).message, /FUNCTIONS_DIR .*nope/)
  const file = tempDir(t, { 'f.mjs': src })
  const err2 = await loadCatalog(join(file, 'f.mjs'), captureLogger().logger).catch((e: unknown) => e)
  t.ok(isBosunError(err2, errors.CONFIG), 'a file is not a folder')
})
