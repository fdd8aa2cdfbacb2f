import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Config } from './config.js';
import { PRIVATE_DIR, writeFileAtomic } from './files.js';
import { repositoryHome } from './repository/home.js';

/**
 * The databases lifeboat is about to create, written down in the repository
 * BEFORE each CREATE DATABASE. A database exists from the moment the server
 * finishes creating it, but lifeboat can only mark it (its comment) after: a
 * crash in between used to leave a database nobody could tell from a user's.
 * Its name carries the entry's token, so the next cleanup drops exactly the
 * databases it recorded and never anything else. An entry is removed once its
 * database is dropped, kept for good, or was refused by the server.
 */
export interface LedgerEntry {
  /** 8 hex digits; the database's name ends with `_<token>`. */
  token: string;
  name: string;
  /** The marker kind it was to get (src/marked-database.ts). */
  kind: string;
  /** `host:port` as lifeboat reached the server; a cleanup only looks at entries of its own server. */
  server: string;
  /** The database lifeboat was connected to: its advisory lock guards the name. */
  maintenanceDb: string;
  host: string;
  pid: number;
  at: string;
}

export interface DatabaseLedger {
  record(entry: LedgerEntry): Promise<void>;
  remove(token: string): Promise<void>;
  list(): Promise<LedgerEntry[]>;
}

/** A new token for a database name. */
export function databaseToken(): string {
  return randomBytes(4).toString('hex');
}

/**
 * Does `name` carry `token` as lifeboat writes it (`…_<yyyymmddhhmmss>_<token>`,
 * or `…__restoring_<token>` for a restore under a chosen name)? Only such a
 * name is ever dropped unmarked: a ledger entry someone else wrote cannot
 * reach a database merely named `…_<8 hex>`.
 */
export function carriesToken(name: string, token: string): boolean {
  return /^[0-9a-f]{8}$/.test(token) && new RegExp(`(_\\d{14}|__restoring)_${token}$`).test(name);
}

/** The entry for a database about to be created by this process. */
export function ledgerEntry(
  fields: Pick<LedgerEntry, 'token' | 'name' | 'kind' | 'server' | 'maintenanceDb'>,
): LedgerEntry {
  return { ...fields, host: hostname(), pid: process.pid, at: new Date().toISOString() };
}

/** The ledger as files in `<repository>/databases/`, one per database, written atomically. */
export function databaseLedger(config: Pick<Config, 'destinations'>): DatabaseLedger {
  const dir = path.join(repositoryHome(config), 'databases');
  const file = (token: string) => path.join(dir, `${token}.json`);
  return {
    async record(entry) {
      await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
      await writeFileAtomic(file(entry.token), `${JSON.stringify(entry, null, 2)}\n`);
    },
    async remove(token) {
      await rm(file(token), { force: true });
    },
    async list() {
      const names = await readdir(dir).catch(() => [] as string[]);
      const entries: LedgerEntry[] = [];
      for (const name of names.filter((n) => /^[0-9a-f]{8}\.json$/.test(n))) {
        const entry = parseEntry(await readFile(path.join(dir, name), 'utf8').catch(() => ''));
        if (entry && `${entry.token}.json` === name) entries.push(entry);
      }
      return entries;
    },
  };
}

/** What the file says, if it is an entry at all (the repository is not trusted further than that). */
function parseEntry(text: string): LedgerEntry | undefined {
  try {
    const e = JSON.parse(text) as Partial<LedgerEntry> | null;
    const strings = ['token', 'name', 'kind', 'server', 'maintenanceDb', 'host', 'at'] as const;
    if (!e || strings.some((k) => typeof e[k] !== 'string') || typeof e.pid !== 'number')
      return undefined;
    return e as LedgerEntry;
  } catch {
    return undefined;
  }
}
