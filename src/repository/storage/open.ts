import type { Destination } from '../../config.js';
import { LocalRepo } from './local-repo.js';
import type { Repo } from './repo.js';
import { S3Repo } from './s3-repo.js';

const opened = new WeakMap<Destination, Repo>();

/** The storage behind a destination; one per destination per process, so S3 clients are reused. */
export function openRepo(dest: Destination): Repo {
  let repo = opened.get(dest);
  if (!repo) {
    repo =
      dest.kind === 's3' ? new S3Repo(dest.name, dest.s3) : new LocalRepo(dest.name, dest.path);
    opened.set(dest, repo);
  }
  return repo;
}

/** Where a destination is, for people: a directory or an s3:// URL (never credentials). */
export function describeDestination(dest: Destination): string {
  return dest.kind === 's3' ? `s3://${dest.s3.bucket}/${dest.s3.prefix}` : dest.path;
}
