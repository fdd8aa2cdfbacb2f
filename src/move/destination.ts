import { checkName } from '../restore/databases.js';
import { scratchServer, withDatabase, type Target } from '../target.js';

/**
 * Where a move goes: the URL names the other server and a database there to
 * connect to; the moved database takes the source's name, or `as`. The
 * source's password goes only to the source's own server (scratchServer).
 */
export interface MoveDestination {
  /** The other server, with the moved database as its database. */
  target: Target;
  /** The database to connect to there for creating; absent: postgres, else template1. */
  maintenanceDb?: string;
}

export function moveDestination(
  to: string,
  as: string | undefined,
  source: Target,
): MoveDestination {
  if (as !== undefined) checkName(as, '--as');
  const server = scratchServer(to, source);
  const name = as ?? source.database;
  return {
    target: withDatabase(server, name),
    ...(server.database !== name ? { maintenanceDb: server.database } : {}),
  };
}
