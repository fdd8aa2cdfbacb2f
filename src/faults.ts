import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A fault test will stop at `name`: work that would run past it in one go takes the way that passes it. */
export function pauseWanted(name: string): boolean {
  const wanted = process.env.LIFEBOAT_PAUSE_AT;
  return Boolean(wanted && process.env.LIFEBOAT_PAUSE_DIR && wanted.split(',').includes(name));
}

/**
 * Named points where the fault tests stop a real lifeboat process to kill it
 * (SIGKILL) or to act beside it. With LIFEBOAT_PAUSE_AT=<name> and
 * LIFEBOAT_PAUSE_DIR=<dir>, reaching <name> creates <dir>/<name>.paused and
 * waits until that file is removed. Without them this costs nothing.
 */
export async function pausePoint(name: string): Promise<void> {
  const dir = process.env.LIFEBOAT_PAUSE_DIR;
  if (!dir || !pauseWanted(name)) return;
  // Step ids may hold a slash (knex steps): the file name is the point's name, encoded.
  const marker = path.join(dir, `${encodeURIComponent(name)}.paused`);
  await writeFile(marker, String(process.pid));
  for (;;) {
    try {
      await access(marker);
    } catch {
      return;
    }
    await sleep(25);
  }
}
