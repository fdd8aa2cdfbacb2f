import { statfs } from 'node:fs/promises';
import type pg from 'pg';
import { readClusterNeeds } from '../cluster-needs.js';
import { preflightProblems, readDestinationFacts } from '../preflight.js';
import { databaseExists, withMaintenanceConnection } from '../restore/databases.js';
import { formatBytes } from '../units.js';
import type { MoveDestination } from './destination.js';

/** Room for the restored database beyond the source's size: indexes rebuilt, WAL written meanwhile. */
const SPACE_MARGIN = 1.2;

export interface DestinationReadiness {
  serverVersion: string;
  /** Each thing that stops the move, in one sentence. */
  problems: string[];
  /** What could not be checked, said but not refused. */
  notes: string[];
}

/**
 * Everything the destination lacks for the source database, read before
 * anything is changed on either side: version, roles, extensions and their
 * update paths, a free name, and room on its disk. Encoding and locale are
 * not compared with the server's defaults: the database is created in the
 * source's own (a locale the server lacks is refused when it is created).
 */
export async function destinationProblems(
  source: pg.ClientBase,
  dest: MoveDestination,
  opts: { createRoles: boolean },
): Promise<DestinationReadiness> {
  const needs = await readClusterNeeds(source);
  const src = await source.query<{
    version: string;
    num: string;
    system: string;
    bytes: string;
    database: string;
  }>(
    `select current_setting('server_version') as version, current_database() as database,
            current_setting('server_version_num') as num,
            (select system_identifier::text from pg_control_system()) as system,
            pg_database_size(current_database())::text as bytes`,
  );
  const s = src.rows[0]!;
  return withMaintenanceConnection(dest.target, dest.maintenanceDb, async (admin) => {
    const facts = await readDestinationFacts(admin, needs);
    const problems = preflightProblems(
      { serverVersion: s.version, serverMajor: Math.floor(Number(s.num) / 10000), needs },
      facts,
    )
      .filter((p) => p.kind !== 'encoding' && p.kind !== 'locale')
      .filter((p) => !(opts.createRoles && p.kind === 'role'))
      .map((p) => p.detail);
    const name = dest.target.database;
    const system = await admin.query<{ system: string }>(
      `select system_identifier::text as system from pg_control_system()`,
    );
    if (system.rows[0]?.system === s.system && name === s.database)
      problems.push(
        `the destination is the source itself; name another server, or another database with --as`,
      );
    else if (await databaseExists(admin, name))
      problems.push(
        `a database "${name}" already exists on the destination; lifeboat never moves over one (name another with --as)`,
      );
    const notes: string[] = [];
    const free = await freeBytes(admin, dest.target.host);
    const needed = Number(s.bytes) * SPACE_MARGIN;
    if (free === undefined)
      notes.push(
        `The destination's free disk space cannot be read from here (another machine, or no right to read data_directory); make sure it has ${formatBytes(needed)} free.`,
      );
    else if (free < needed)
      problems.push(
        `the destination's disk has ${formatBytes(free)} free, and the database needs about ${formatBytes(needed)} (${formatBytes(Number(s.bytes))} now, with room to rebuild its indexes)`,
      );
    return { serverVersion: facts.serverVersion, problems, notes };
  });
}

/** Free bytes under the destination's data directory, when that server runs on this machine. */
async function freeBytes(admin: pg.ClientBase, host: string): Promise<number | undefined> {
  const local = host.startsWith('/') || ['localhost', '127.0.0.1', '::1'].includes(host);
  if (!local) return undefined;
  try {
    const res = await admin.query<{ dir: string }>(
      `select current_setting('data_directory') as dir`,
    );
    const fs = await statfs(res.rows[0]!.dir);
    return fs.bavail * fs.bsize;
  } catch {
    return undefined;
  }
}
