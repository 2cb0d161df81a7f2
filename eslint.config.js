// ESLint 9 flat config: typescript-eslint's type-checked `recommended` rules (about 30 s of CPU for the whole
// tree on this project's 2-core machines), unused-code checks, and a 120-column limit for what prettier cannot
// break (comments, long strings). Formatting itself is prettier's (`.prettierrc.json`).
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import globals from 'globals'
import tseslint from 'typescript-eslint'

/** runner/ modules any code may import directly: no dependency beyond pino (and V8 flags set before the rest loads). */
const RUNNER_LEAVES = ['errors', 'logger', 'retry', 'events/model', 'events/leadership', 'v8-tuning', 'v8-flags']
/** The NATS side of the runtime, which the job store (jobs/) imports directly. */
const JOB_STORE = ['transport/reply-inbox', 'transport/subjects', 'jetstream-stream', 'config']

/** A no-restricted-imports pattern: any runner/ module but `allowed`. */
function runnerDoor(allowed, message) {
  const names = allowed.map((m) => m.replace('/', '\\/')).join('|')
  return { regex: `(^|\\/)runner\\/(?!(${names})\\.js$)`, message }
}
const THROUGH_INDEX =
  'import the runtime from runner/index.js (its header lists the modules that may be imported directly)'
const WITHOUT_RUNTIME =
  'this code must not load the runtime (ZooKeeper, prom-client): import a leaf (runner/index.ts header)'

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      '.bosun/',
      '.tap/',
      'bench/results/',
      // deliberately broken: the catalog's syntax-error test loads it
      'test/fixtures/functions/syntax-error.mjs',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/max-len': ['error', { code: 120, tabWidth: 2, ignoreUrls: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'all',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: false, allowTernary: false }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap awaits every subtest itself: `t.test(…)` need not be awaited
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      // `async` without `await` is how Fastify plugins and promise-returning interface methods are written, and
      // dropping it would turn a rejection into a synchronous throw: not worth a rule.
      '@typescript-eslint/require-await': 'off',
      // rethrowing what a catch caught (typed `unknown`) is fine; throwing a literal is not
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true }],
      // a variable read by a closure (a teardown) before its one assignment stays `let`
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      'no-unused-labels': 'error',
      'no-unused-private-class-members': 'error',
      'no-unreachable': 'error',
      'no-useless-return': 'error',
    },
  },
  {
    // Tests read HTTP answers, NATS replies and JSON files whose shapes they then assert on: reading fields of
    // such `any` values is what the assertions check, so `any` and the no-unsafe-* rules stay for the code, not
    // the tests. node-zookeeper-client's `Exception` type does not extend Error (the value is one), and the
    // tests' small promise wrappers of its calls reject with it as it comes.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // runner/index.ts is the runtime's door (its header says why and what may bypass it): the processes and the
  // benches import runner/ through it or a dependency-light leaf; code that runs without the runtime (job threads,
  // the function kit, the CLI, the clients, the launcher, the job store the native client loads) only the leaves.
  {
    files: ['api/**/*.ts', 'worker/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [runnerDoor(['index', ...RUNNER_LEAVES], THROUGH_INDEX)] }],
    },
  },
  {
    files: ['worker/executor/**/*.ts', 'worker/function-kit.ts', 'cli/**/*.ts', 'client/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [runnerDoor(RUNNER_LEAVES, WITHOUT_RUNTIME)] }] },
  },
  {
    files: ['jobs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [runnerDoor([...RUNNER_LEAVES, ...JOB_STORE], WITHOUT_RUNTIME)] }],
    },
  },
  // the runtime bench measures the ZooKeeper recipes themselves
  {
    files: ['bench/runtime.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [runnerDoor(['index', 'zk/index', ...RUNNER_LEAVES], THROUGH_INDEX)] },
      ],
    },
  },
  // plain JavaScript (function files, the thread entry, scripts) is not in the TypeScript project
  { files: ['**/*.mjs', '**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
  // the dashboard's scripts run in the browser (api/routes/ui.ts serves them)
  { files: ['api/ui/assets/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
)
