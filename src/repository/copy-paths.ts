import { AGE_SUFFIX } from './age.js';

/**
 * The names a copy's files may have. A manifest or copy.json comes from a
 * store that others can write to: a name is only ever a plain dump file or
 * SHA256SUMS (each stored as `<name>.age` in an encrypted copy), so no name
 * can lead outside the copy, or outside a directory it is fetched into.
 */
const DUMP_FILE = /^dump\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export function isCopyFile(name: string): boolean {
  return name === 'SHA256SUMS' || DUMP_FILE.test(name);
}

/** A name as a copy stores it: the file's own, or with `.age` when encrypted. */
export function isStoredFile(name: string, encrypted: boolean): boolean {
  if (!encrypted) return isCopyFile(name);
  return name.endsWith(AGE_SUFFIX) && isCopyFile(name.slice(0, -AGE_SUFFIX.length));
}
