import type { Destination, S3Destination } from './destination.js';
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

/** Write and delete a probe object: the credentials, the bucket and the permissions in one go. */
export async function probeStore(dest: S3Destination, probe: string): Promise<void> {
  const repo = openRepo(dest) as S3Repo;
  await repo.putObject(probe, 'ok');
  await repo.deleteKeys([probe]);
}
