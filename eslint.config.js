// ESLint 9 flat config: typescript-eslint's type-checked `recommended` rules (about 30 s of CPU for the whole
// tree on this project's 2-core machines), unused-code checks, and a 120-column limit for what prettier cannot
// break (comments, long strings). Formatting itself is prettier's (`.prettierrc.json`).
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import globals from 'globals'
import tseslint from 'typescript-eslint'

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
  // plain JavaScript (function files, the thread entry, scripts) is not in the TypeScript project
  { files: ['**/*.mjs', '**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
  // the dashboard's scripts run in the browser (api/routes/ui.ts serves them)
  { files: ['api/ui/assets/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
)
