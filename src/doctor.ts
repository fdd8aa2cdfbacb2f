import { describeDestination, type S3Destination } from './repository/storage/destination.js';
import { probeStore } from './repository/storage/open.js';
import { s3Reason } from './repository/storage/reasons.js';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Config } from './config.js';
import { connect } from './db.js';
import { BadInputError, errorMessage } from './errors.js';
import { readIdentity, type TargetIdentity } from './identity.js';
import { findTool } from './pg-programs/find.js';
import { readPrivilegeGaps, type Need } from './privileges.js';
import { restoreRoleCheck } from './restore/restore-role.js';
import { describeTarget, scratchServer, type Target } from './target.js';
import { formatBytes } from './units.js';
import { estimateNextBackup, tableDataBytes } from './backup-estimate.js';
import { latestFor, readCatalog } from './repository/catalog.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** lifeboat works without it (only one feature does not): reported, but doctor still passes. */
  optional?: boolean;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

/**
 * Preflight: everything backup and verify need, each as one line. Every check
 * runs even when an earlier one failed, so all problems show at once.
 */
export async function runDoctor(opts: {
  config: Config | undefined;
  configProblems: string[];
  target: Target;
}): Promise<DoctorReport> {
  const { config, target } = opts;
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string, optional = false): void =>
    void checks.push({ name, ok, detail, ...(optional ? { optional } : {}) });

  // One line per problem, each with its place in the file.
  for (const problem of opts.configProblems) add('config', false, problem);
  if (opts.configProblems.length === 0)
    add('config', true, config?.file ? `valid (${config.file})` : 'valid (built-in defaults)');

  let client: pg.Client | undefined;
  let identity: TargetIdentity | undefined;
  let estimate = 0;
  try {
    client = await connect(target, 'lifeboat doctor');
    identity = await readIdentity(client);
    add('server', true, `${describeTarget(target)}: PostgreSQL ${identity.serverVersion}`);
  } catch (err) {
    add('server', false, errorMessage(err));
  }
  if (client && identity) {
    try {
      const needs: Need[] = ['read', 'journal', 'swap', 'freeze', 'owners'];
      if (!config?.scratchUrl) needs.push('createdb');
      const gaps = await readPrivilegeGaps(client, needs);
      for (const [need, name, optional, ok] of PRIVILEGE_CHECKS) {
        if (need === 'createdb' && config?.scratchUrl) continue;
        const missing = gaps.filter((g) => g.need === need);
        add(
          name,
          missing.length === 0,
          missing.length === 0 ? ok : missing.map((g) => `${g.missing}: ${g.fix}`).join('; '),
          optional,
        );
      }
      estimate = await tableDataBytes(client);
      if (!config?.scratchUrl)
        add('restore role', ...(await restoreRoleCheck(client, config?.restoreRole)));
    } catch (err) {
      add('privileges', false, errorMessage(err));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (config?.scratchUrl) {
    try {
      const scratch = scratchServer(config.scratchUrl, target);
      const sc = await connect(scratch, 'lifeboat doctor');
      try {
        const gaps = await readPrivilegeGaps(sc, ['createdb']);
        add(
          'scratch server',
          gaps.length === 0,
          `${describeTarget(scratch)}${gaps.map((g) => `: ${g.missing}: ${g.fix}`).join('')}`,
        );
        add('restore role', ...(await restoreRoleCheck(sc, config.restoreRole)));
      } finally {
        await sc.end().catch(() => undefined);
      }
    } catch (err) {
      add('scratch server', false, errorMessage(err));
    }
  }

  for (const name of ['pg_dump', 'pg_restore']) {
    try {
      const tool = await findTool(name, identity?.serverMajor, config?.pgBinDir);
      add(name, true, `${tool.version} (${tool.path})`);
    } catch (err) {
      add(name, false, errorMessage(err));
    }
  }

  if (config && identity && opts.configProblems.length === 0) {
    const entries = await readCatalog(config.destinations, config.signingKey).catch(() => []);
    const next = estimateNextBackup(latestFor(entries, identity), estimate);
    // Information, never a failure: a first backup has nothing to go by.
    add(
      'next backup',
      true,
      next?.detail ?? 'no earlier backup of this target to estimate from',
      true,
    );
  }

  for (const dest of config?.destinations ?? []) {
    add(
      `destination ${dest.name}`,
      ...(dest.kind === 's3'
        ? await checkRemoteDestination(dest)
        : await checkDestination(dest.path, estimate)),
    );
  }
  return { ok: checks.every((c) => c.ok || c.optional), checks };
}

/** Each privilege check: what it is for, whether lifeboat works without it, and what "ok" says. */
const PRIVILEGE_CHECKS: [Need, string, boolean, string][] = [
  [
    'read',
    'privileges: read everything (backup, fingerprints)',
    false,
    'USAGE on every schema, SELECT on every table and sequence',
  ],
  [
    'journal',
    'privileges: run journal (run, rollback)',
    false,
    'may create schema lifeboat_journal',
  ],
  [
    'createdb',
    'privileges: create scratch database (verify, rehearse, restore)',
    false,
    'may create databases (CREATEDB)',
  ],
  ['swap', 'privileges: restore --swap', true, 'owns the database and may create databases'],
  ['freeze', 'privileges: run --freeze', true, 'superuser'],
  ['owners', 'privileges: restore owners and privileges', true, 'superuser'],
];

/** Writable, and room for the dump: table data is an upper bound for a compressed dump. */
async function checkDestination(dir: string, estimate: number): Promise<[boolean, string]> {
  try {
    await mkdir(dir, { recursive: true });
    const probe = path.join(dir, `.doctor-${randomBytes(4).toString('hex')}`);
    await writeFile(probe, 'ok');
    await rm(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return [false, `${dir} is not writable${code ? ` (${code})` : ''}`];
  }
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const ok = free >= estimate;
  return [
    ok,
    `${dir}: ${formatBytes(free)} free, backup estimated at up to ${formatBytes(estimate)}${ok ? '' : ' — not enough space'}`,
  ];
}

/** Write and delete a probe object: the credentials, the bucket and the permissions in one go. */
async function checkRemoteDestination(dest: S3Destination): Promise<[boolean, string]> {
  const probe = `${dest.s3.prefix}.doctor-${randomBytes(4).toString('hex')}`;
  try {
    await probeStore(dest, probe);
    return [
      true,
      `${describeDestination(dest)} is writable${dest.encrypt ? ', copies encrypted with age' : ''}`,
    ];
  } catch (err) {
    return [false, `${describeDestination(dest)}: ${s3Reason(err)}`];
  }
}

export function doctorFailure(report: DoctorReport): BadInputError {
  const failed = report.checks.filter((c) => !c.ok && !c.optional);
  return new BadInputError(`${failed.length} preflight check(s) failed.`, {
    details: failed.map((c) => `${c.name}: ${c.detail}`),
    data: report,
  });
}
