import { describeDestination, openRepo } from './storage/open.js';
import type { S3Repo } from './storage/s3-repo.js';
import { s3Reason } from './storage/reasons.js';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Config, S3Destination } from './config.js';
import { connect } from './db.js';
import { BadInputError, errorMessage } from './errors.js';
import { readIdentity, type TargetIdentity } from './identity.js';
import { findTool } from './pgtools.js';
import { describeTarget, resolveTarget, type Target } from './target.js';
import { formatBytes } from './units.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
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
  const add = (name: string, ok: boolean, detail: string): void =>
    void checks.push({ name, ok, detail });

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
      const privileges = await readPrivileges(client);
      add(
        'privileges: read all tables',
        privileges.unreadable.length === 0,
        privileges.unreadable.length === 0
          ? `SELECT on all ${privileges.tables} table(s)`
          : `no SELECT on ${privileges.unreadable.slice(0, 5).join(', ')}${privileges.unreadable.length > 5 ? ', …' : ''} (grant pg_read_all_data, or SELECT)`,
      );
      if (!config?.scratchUrl) {
        add(
          'privileges: create scratch database',
          privileges.canCreateDb,
          privileges.canCreateDb
            ? 'may create databases (CREATEDB) for verification'
            : `role ${target.user} may not create databases; ALTER ROLE ${target.user} CREATEDB, or set scratchUrl`,
        );
      }
      estimate = privileges.dataBytes;
    } catch (err) {
      add('privileges', false, errorMessage(err));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (config?.scratchUrl) {
    try {
      const scratch = resolveTarget(config.scratchUrl);
      const sc = await connect(scratch, 'lifeboat doctor');
      try {
        const p = await readPrivileges(sc);
        add(
          'scratch server',
          p.canCreateDb,
          `${describeTarget(scratch)}${p.canCreateDb ? '' : ': role may not create databases'}`,
        );
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

  for (const dest of config?.destinations ?? []) {
    add(
      `destination ${dest.name}`,
      ...(dest.kind === 's3'
        ? await checkRemoteDestination(dest)
        : await checkDestination(dest.path, estimate)),
    );
  }
  return { ok: checks.every((c) => c.ok), checks };
}

async function readPrivileges(
  client: pg.ClientBase,
): Promise<{ tables: number; unreadable: string[]; canCreateDb: boolean; dataBytes: number }> {
  const tables = await client.query<{ name: string; readable: boolean; bytes: string }>(
    `select format('%I.%I', n.nspname, c.relname) as name,
            has_table_privilege(c.oid, 'SELECT') as readable,
            pg_table_size(c.oid)::text as bytes
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'm', 'p')
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`,
  );
  const role = await client.query<{ ok: boolean }>(
    'select rolcreatedb or rolsuper as ok from pg_roles where rolname = current_user',
  );
  return {
    tables: tables.rows.length,
    unreadable: tables.rows.filter((r) => !r.readable).map((r) => r.name),
    canCreateDb: role.rows[0]?.ok ?? false,
    dataBytes: tables.rows.reduce((sum, r) => sum + Number(r.bytes), 0),
  };
}

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
  const repo = openRepo(dest) as S3Repo;
  const probe = `${dest.s3.prefix}.doctor-${randomBytes(4).toString('hex')}`;
  try {
    await repo.putObject(probe, 'ok');
    await repo.deleteKeys([probe]);
    return [
      true,
      `${describeDestination(dest)} is writable${dest.encrypt ? ', copies encrypted with age' : ''}`,
    ];
  } catch (err) {
    return [false, `${describeDestination(dest)}: ${s3Reason(err)}`];
  }
}

export function doctorFailure(report: DoctorReport): BadInputError {
  const failed = report.checks.filter((c) => !c.ok);
  return new BadInputError(`${failed.length} preflight check(s) failed.`, {
    details: failed.map((c) => `${c.name}: ${c.detail}`),
    data: report,
  });
}
