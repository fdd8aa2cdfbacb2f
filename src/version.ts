import { readFileSync } from 'node:fs';
import { packageFile } from './package-root.js';

/** lifeboat's own version, recorded in every manifest. */
export const LIFEBOAT_VERSION: string = (
  JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as {
    version: string;
  }
).version;
