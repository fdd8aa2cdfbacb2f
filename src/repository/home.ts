import path from 'node:path';
import type { Config } from '../config.js';

/** lifeboat's own directory: beside the first local destination, else .lifeboat in the working directory. */
export function repositoryHome(config: Pick<Config, 'destinations'>): string {
  const local = config.destinations.find((d) => d.kind === 'local');
  return local ? local.path : path.resolve('.lifeboat');
}

/** Where each command's report is kept (JSON and Markdown). */
export function reportsDir(config: Pick<Config, 'destinations'>): string {
  return path.join(repositoryHome(config), 'reports');
}
