import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { sha256Hex, type Manifest } from '../../src/repository/manifest.js';
import { adminUrl } from '../support/db.js';

/** What someone who can write to a destination, but holds no signing key, can do to a local copy. */
export async function rewriteManifest(
  copyDir: string,
  change: (manifest: Manifest) => void,
): Promise<Manifest> {
  const file = path.join(copyDir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
  change(manifest);
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  await writeFile(file, text);
  await writeFile(path.join(copyDir, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
  return manifest;
}

/**
 * Rewrite a local copy's manifest and keep its verifications bound to it, as
 * anyone can without a signing key: the backup still reads as verified.
 */
export async function rewriteVerifiedManifest(
  copyDir: string,
  change: (manifest: Manifest) => void,
): Promise<Manifest> {
  const manifest = await rewriteManifest(copyDir, change);
  const digest = sha256Hex(await readFile(path.join(copyDir, 'manifest.json')));
  for (const name of await readdir(path.join(copyDir, 'verifications'))) {
    const file = path.join(copyDir, 'verifications', name);
    const record = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...record, manifestSha256: digest }, null, 2));
  }
  return manifest;
}

/** One query on the test server as its superuser. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params?: unknown[],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: adminUrl() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}

/** A login role of its own and a URL that connects as it to `database`. */
export async function loginRole(
  prefix: string,
  database: string,
  attributes = '',
): Promise<{ name: string; password: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${Date.now().toString(16)}${Math.floor(Math.random() * 1e4)}`;
  const password = `pw-${name}-secret`;
  await adminQuery(
    `create role ${pg.escapeIdentifier(name)} login ${attributes} password ${pg.escapeLiteral(password)}`,
  );
  const url = new URL(adminUrl());
  url.username = name;
  url.password = password;
  url.pathname = `/${encodeURIComponent(database)}`;
  return {
    name,
    password,
    url: url.toString(),
    drop: async () => {
      await adminQuery(`drop owned by ${pg.escapeIdentifier(name)} cascade`).catch(() => undefined);
      await adminQuery(`drop role if exists ${pg.escapeIdentifier(name)}`);
    },
  };
}

/** A client on the test server for any database name (a URL cannot carry every name to node-postgres). */
export function clientOf(database: string): pg.Client {
  const url = new URL(adminUrl());
  return new pg.Client({
    host: url.searchParams.get('host') ?? url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database,
  });
}
