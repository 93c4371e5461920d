import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder of this run's build of the gateway (main.js, token.js), made by `npm run build`. */
    gatewayBuild: string;
  }
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Builds the gateway once for the run, as `npm run build` does, so that the tests that start it in a
 * process of its own run what production runs. Its own folder under dist/ (the build finds drizzle/
 * upward from itself), so a run never reads a build another run is writing.
 */
export default async function setup(project: TestProject) {
  const outdir = path.join(ROOT, 'dist', `test-run-${process.pid}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'build', '--', `--outdir=${outdir}`], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build exited with ${code}`))));
  });
  project.provide('gatewayBuild', outdir);
  return () => fs.rm(outdir, { recursive: true, force: true });
}
