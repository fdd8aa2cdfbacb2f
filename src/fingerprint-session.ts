import { connect } from './db.js';
import { computeFingerprints, type Fingerprints } from './fingerprint.js';
import type { Target } from './target.js';

/** Fingerprint a whole database inside one REPEATABLE READ, READ ONLY transaction. */
export async function fingerprintDatabase(
  target: Target,
  options: { excludeSchemas?: string[]; onTable?: (done: number, total: number) => void } = {},
): Promise<Fingerprints> {
  const client = await connect(target, 'lifeboat fingerprint');
  try {
    await client.query('begin isolation level repeatable read, read only');
    const fingerprints = await computeFingerprints(client, {
      excludeSchemas: options.excludeSchemas,
      onTable: options.onTable ? (d, t) => options.onTable!(d, t) : undefined,
    });
    await client.query('commit');
    return fingerprints;
  } finally {
    await client.end().catch(() => undefined);
  }
}
