import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from './db.js';

export const richSchema = await readFile(
  new URL('../fixtures/rich-schema.sql', import.meta.url),
  'utf8',
);

/** A database loaded with the rich fixture schema. */
export async function richDatabase(prefix: string): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  await db.query(richSchema);
  return db;
}

/** A small database: one table with rows and a serial. */
export async function smallDatabase(prefix: string, rows = 500): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  await db.query(
    `create table items (id serial primary key, name text not null, qty int);
     insert into items (name, qty) select 'item ' || g, g % 17 from generate_series(1, ${rows}) g;`,
  );
  return db;
}

/** The published backup directories of a destination (never the .partial ones). */
export async function backupDirs(destination: string): Promise<string[]> {
  const names = await readdir(destination).catch(() => [] as string[]);
  return names.filter((n) => /^\d{8}T/.test(n)).map((n) => path.join(destination, n));
}

export async function partialDirs(destination: string): Promise<string[]> {
  const names = await readdir(destination).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith('.partial-'));
}

/** A dump data file of a table with rows (the largest .dat.gz). */
export async function largestDataFile(backupDir: string): Promise<string> {
  const dump = path.join(backupDir, 'dump');
  const files = await readdir(dump, { withFileTypes: true });
  let best = '';
  let size = -1;
  const { stat } = await import('node:fs/promises');
  for (const f of files.filter((f) => f.name.endsWith('.dat.gz'))) {
    const s = (await stat(path.join(dump, f.name))).size;
    if (s > size) [best, size] = [path.join(dump, f.name), s];
  }
  return best;
}
