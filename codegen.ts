import type { CodegenConfig } from '@graphql-codegen/cli';

// `npm run codegen` prints schema.graphql from the Pothos schema, then generates typed documents
// (client preset) for the operations written with `graphql(...)` in the GraphQL and box-config tests.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['test/graphql/**/*.ts', 'test/box-config/**/*.ts', '!test/graphql/generated/**'],
  ignoreNoDocuments: false,
  generates: {
    'test/graphql/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        skipTypename: true,
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
      },
    },
  },
};

export default config;
