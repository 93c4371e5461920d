import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configVariables, loadConfig, LOG_LEVELS } from '../../src/config';

// The environment as the gateway reads it: one declaration per variable, every bad one reported at
// once, each with what was given, what is allowed and what to do.

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('gives every variable its declared default when the environment is empty', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 4000, host: '0.0.0.0', databaseUrl: undefined, logLevel: 'info', trustProxy: false, graphqlIntrospection: true, ingestPolicy: 'open' });
    expect(config.dataDir).toBe(path.resolve('.fleetgate/postgres'));
    // Every declaration yields a key, and no two declare one variable.
    const envs = configVariables().map((doc) => doc.env);
    expect(Object.keys(config)).toHaveLength(envs.length);
    expect(new Set(envs).size).toBe(envs.length);
  });

  it('treats an empty or blank value as unset', () => {
    expect(loadConfig({ PORT: '', LOG_LEVEL: ' ', DATABASE_URL: '', ADMIN_TOKEN: '' })).toMatchObject({ port: 4000, logLevel: 'info', databaseUrl: undefined, adminToken: undefined });
  });

  it('parses each kind of value', () => {
    const config = loadConfig({
      PORT: ' 8080 ',
      TRUST_PROXY: 'YES',
      GRAPHQL_INTROSPECTION: 'off',
      LOG_LEVEL: 'Debug',
      FLEETGATE_DATA_DIR: '/var/lib/fleetgate',
      PUBLIC_URL: 'https://fleet.example.com/gw/',
      BOX_NETWORKS: '10.20.0.0/16, 192.168.150.1  fd00::/8',
    });
    expect(config).toMatchObject({ port: 8080, trustProxy: true, graphqlIntrospection: false, logLevel: 'debug', dataDir: '/var/lib/fleetgate', publicUrl: 'https://fleet.example.com/gw' });
    expect(config.boxNetworks).toEqual(['10.20.0.0/16', '192.168.150.1', 'fd00::/8']);
  });

  it('checks LOG_LEVEL like every other variable', () => {
    for (const level of LOG_LEVELS) expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
    expect(refusal({ LOG_LEVEL: 'verbose' }).message).toBe(
      'LOG_LEVEL="verbose" is not one of fatal, error, warn, info, debug, trace, silent; set one of them, or unset LOG_LEVEL for the default info.',
    );
  });

  it('reports every bad variable at once, one line each: what was given, what is allowed, what to do', () => {
    const error = refusal({ PORT: '80.5', DB_POOL_SIZE: '1', TRUST_PROXY: 'maybe', BOX_NETWORKS: '10.0.0.0/33 10.1.0.0/16 nonsense', HOST: 'localhost' });
    expect(error.problems).toEqual([
      'PORT="80.5" is not a whole number from 0 to 65535; set one, or unset PORT for the default 4000.',
      'TRUST_PROXY="maybe" is not true or false; set one, or unset TRUST_PROXY for the default false.',
      'DB_POOL_SIZE="1" is not a whole number from 2 to 1000; set one, or unset DB_POOL_SIZE for the default 10.',
      'BOX_NETWORKS="10.0.0.0/33 10.1.0.0/16 nonsense" is not a list of networks ("10.0.0.0/33" has a prefix that is not 0 to 32; "nonsense" is not a network: give an address with an optional /prefix, e.g. 10.20.0.0/16 or fd00::/8); set one, or unset BOX_NETWORKS for the default 127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7.',
    ]);
    expect(error.message).toBe(`4 settings are wrong:\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}`);
  });

  it('never shows a secret back, and masks the password of a database URL', () => {
    const token = 'fgt_short secret';
    const error = refusal({ ADMIN_TOKEN: token, DATABASE_URL: 'mysql://fleet:Hunter2@db.example.com/fleet', PUBLIC_URL: 'https://user:pw@fleet.example.com' });
    expect(error.message).not.toContain('short secret');
    expect(error.message).not.toContain('Hunter2');
    expect(error.problems).toEqual([
      'PUBLIC_URL="https://user:***@fleet.example.com" is not an http:// or https:// URL without credentials, query or fragment, e.g. https://fleet.example.com (it has credentials); set one, or unset PUBLIC_URL for the address the gateway listens on.',
      'DATABASE_URL="mysql://fleet:***@db.example.com/fleet" is not a postgres:// or postgresql:// URL; set one, or unset DATABASE_URL for the embedded Postgres.',
      `ADMIN_TOKEN (${token.length} characters, not shown) is not 32 to 256 characters without spaces; make one with \`npm run token -- generate\`, or unset ADMIN_TOKEN and the first start prints one.`,
    ]);
  });

  it('lets a caller override parsed values (tests and tools)', () => {
    expect(loadConfig({ PORT: '5000' }, { port: 0 }).port).toBe(0);
  });
});

describe('the declarations', () => {
  it('describe every variable: type, what is allowed, a line for the manual, and a default or what unset means', () => {
    for (const doc of configVariables()) {
      expect(doc.env, JSON.stringify(doc)).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(doc.type && doc.allowed && doc.expected && doc.about, doc.env).toBeTruthy();
      expect(doc.default ?? doc.unsetMeans, doc.env).toBeTruthy();
      expect(doc.about, doc.env).not.toContain('\n');
    }
  });
});
