import type { Config } from '../config.js';
import type { Progress } from '../progress.js';
import type { Target } from '../target.js';

/** What `lifeboat restore` is asked to do: read by the restore and by the fill-and-prove under it. */
export interface RestoreOptions {
  config: Config;
  /** The target: the new database is created on its server, beside it. */
  target: Target;
  backupId: string;
  /** Name of the new database; default `<target>__restored_<yyyymmddhhmmss>`. */
  as?: string;
  /** After the proof, exchange names with the target. */
  swap?: boolean;
  /** With swap: end the sessions connected to either database instead of refusing. */
  terminate?: boolean;
  /** Restore owners and privileges (pg_restore without --no-owner --no-privileges). */
  keepOwners: boolean;
  /** The database to connect to for creating and renaming; default postgres, else template1. */
  maintenanceDb?: string;
  progress: Progress;
  /** An interrupt: pg_restore stops, the half-restored database is dropped, the target untouched. */
  signal?: AbortSignal;
  /**
   * With swap: called once the restored database is proved, just before the
   * names are exchanged (the restore rung copies the run's journal into it, so
   * that no instant after the swap finds the run forgotten).
   */
  beforeSwap?: (restored: string, replacedAs: string) => Promise<void>;
}
