import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Syntax-only rules: type-aware linting would re-run the type checker that `npm run build` already runs.
export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', '.provenance/']),
  tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
);
