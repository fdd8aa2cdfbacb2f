import type pg from 'pg';
import { ToolError } from '../errors.js';
import type { Manifest } from '../repository/manifest.js';
import { findTool } from '../pg-programs/find.js';

/** A pg_restore for the server's version that can read the backup's archive. Returns its path. */
export async function restoreTool(
  admin: pg.ClientBase,
  manifest: Manifest,
  pgBinDir: string | undefined,
): Promise<string> {
  const res = await admin.query<{ num: string }>(
    `select current_setting('server_version_num') as num`,
  );
  const serverMajor = Math.floor(Number(res.rows[0]?.num) / 10000);
  const pgRestore = await findTool('pg_restore', serverMajor, pgBinDir);
  const dumpMajor = Number(manifest.tools.pgDump.version.split('.')[0]);
  if (pgRestore.major < dumpMajor) {
    throw new ToolError(
      `pg_restore ${pgRestore.version} cannot read an archive written by pg_dump ${manifest.tools.pgDump.version}; install client tools ${dumpMajor} or newer.`,
    );
  }
  return pgRestore.path;
}
