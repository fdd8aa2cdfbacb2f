import { readCatalog } from '../repository/catalog.js';
import type { Config } from '../config.js';
import { BadInputError } from '../errors.js';
import { readPrivilegeGaps, type PrivilegeGap } from '../privileges.js';
import { describeTarget, type Target } from '../target.js';
import {
  checkName,
  databaseExists,
  suffixedName,
  timestamp,
  withMaintenanceConnection,
} from './databases.js';
import { describeSession, listSessions } from './swap.js';

/**
 * What `restore` would do, read only: which backup and copy, the new
 * database's name, and with --swap which name the target would be kept under
 * and which sessions stand in the way. `wouldExit` is where it would stop
 * before restoring anything (0: it would go ahead).
 */
export interface RestorePreview {
  backupId: string;
  target: string;
  /** The destinations holding a copy; the first intact one is restored. */
  copies: string[];
  restoreAs: string;
  problems: string[];
  swap: { replacedAs: string; sessions: string[]; terminate: boolean } | null;
  privileges: PrivilegeGap[];
  wouldExit: number;
}

export async function previewRestore(opts: {
  config: Config;
  target: Target;
  backupId: string;
  as?: string;
  swap: boolean;
  terminate: boolean;
  keepOwners: boolean;
  maintenanceDb?: string;
}): Promise<RestorePreview> {
  const { config, target } = opts;
  if (opts.as !== undefined) checkName(opts.as, '--as');
  const entry = (await readCatalog(config.destinations, config.signingKey)).find(
    (e) => e.id === opts.backupId,
  );
  if (!entry) {
    throw new BadInputError(
      `No backup ${opts.backupId} in any destination; see \`lifeboat backups list\`.`,
    );
  }
  const now = new Date();
  const restoreAs = opts.as ?? suffixedName(target.database, `__restored_${timestamp(now)}`);
  return withMaintenanceConnection(target, opts.maintenanceDb, async (admin) => {
    const problems: string[] = [];
    if (!entry.manifest)
      problems.push(`backup ${entry.id} is damaged: ${entry.manifestProblems.join('; ')}`);
    if (await databaseExists(admin, restoreAs))
      problems.push(`a database named ${restoreAs} exists; nothing is restored over a database`);
    const exists = await databaseExists(admin, target.database);
    if (opts.swap && !exists) problems.push(`there is no database ${target.database} to swap with`);
    const sessions = opts.swap && exists ? await listSessions(admin, [target.database]) : [];
    if (sessions.length > 0 && !opts.terminate)
      problems.push(
        `${sessions.length} session(s) are connected to ${target.database}; --terminate ends them`,
      );
    const privileges = await readPrivilegeGaps(
      admin,
      [
        opts.swap && exists ? 'swap' : 'createdb',
        ...(opts.keepOwners ? (['owners'] as const) : []),
      ],
      exists ? target.database : undefined,
    );
    return {
      backupId: entry.id,
      target: describeTarget(target),
      copies: entry.copies.map((c) => c.destination),
      restoreAs,
      problems,
      swap: opts.swap
        ? {
            replacedAs: suffixedName(target.database, `__replaced_${timestamp(now)}`),
            sessions: sessions.map(describeSession),
            terminate: opts.terminate,
          }
        : null,
      privileges,
      wouldExit: problems.length > 0 || privileges.some((p) => p.need !== 'owners') ? 2 : 0,
    };
  });
}
