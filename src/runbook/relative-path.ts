import path from 'node:path';

/**
 * Why a file reference in a runbook is refused, or undefined when it is a
 * relative path that stays inside the runbook's directory. Checked on the
 * string alone; loadRunbook checks symlinks on disk as well.
 */
export function relativePathProblem(reference: string): string | undefined {
  if (reference.trim() === '') return 'a file path must not be empty';
  if (reference.includes('\0')) return 'a file path must not contain NUL characters';
  if (path.posix.isAbsolute(reference) || path.win32.isAbsolute(reference)) {
    return `${reference} is absolute; give a path relative to the runbook's directory`;
  }
  // Normalise both ways so `a\..\..\x` cannot slip past on either platform.
  const normalized = path.posix.normalize(reference.replaceAll('\\', '/'));
  if (normalized === '..' || normalized.startsWith('../')) {
    return `${reference} leaves the runbook's directory; keep referenced files beside the runbook`;
  }
  return undefined;
}

/** Whether `target` is `root` or inside it (both absolute, symlinks already resolved). */
export function isInside(root: string, target: string): boolean {
  const relative = path.relative(root, target);
  const escapes = relative === '..' || relative.startsWith(`..${path.sep}`);
  return !escapes && !path.isAbsolute(relative);
}
