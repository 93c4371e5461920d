import { defineConfig } from 'drizzle-kit';

// Generates SQL migrations into drizzle/ from src/db/schema.ts; the gateway applies them at start-up.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
});
