import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { NO_LIMITS_ENV } from '../../src/config';
import { GATEWAY_NODE_FLAGS } from '../../src/node-flags';
import { newAdminToken, rememberToken } from './auth';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  /** The admin token the helpers send (empty when the test chose none). */
  token: string;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/**
 * Runs the gateway in its own process as production does (the run's build, with the node flags
 * production gives it) and waits until it listens.
 */
export async function spawnGateway(env: Record<string, string>, timeoutMs = 60_000): Promise<GatewayProcess> {
  // An admin token for the helpers (env may bring its own, or ADMIN_TOKEN: '' for the first-start one).
  const token = env.ADMIN_TOKEN ?? newAdminToken();
  const child = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, path.join(inject('gatewayBuild'), 'main.js')], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', HOST: '127.0.0.1', ADMIN_TOKEN: token, ...NO_LIMITS_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in time:\n${output}`)), timeoutMs);
    const check = () => {
      const match = /fleetgate is up on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before listening:\n${output}`)));
  });
  if (token) rememberToken(url, token);
  return { child, url, token, output: () => output, exited };
}

/** Runs a TypeScript script from source (node with tsx), and returns its exit code and output. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
