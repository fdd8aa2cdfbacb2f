import type pg from 'pg';
import type { ClusterNeeds, RoleNeed } from '../cluster-needs.js';
import { quoteIdent, quoteLiteral } from '../db.js';
import type { Config } from '../config.js';
import {
  BadInputError,
  ConnectionError,
  VerificationFailedError,
  errorMessage,
} from '../errors.js';
import { preflightProblems, readDestinationFacts, type PreflightProblem } from '../preflight.js';
import type { Manifest } from '../repository/manifest.js';
import { findBackup, readCatalog, type CatalogEntry } from '../repository/catalog.js';
import { scratchServer, serverOf, withDatabase, type Target } from '../target.js';
import type { DatabaseRow } from './database-properties.js';
import { databaseExists, withMaintenanceConnection } from './databases.js';

/**
 * A restore onto another server than the source's: that server has never
 * seen the database, so what the dump does not carry comes from the
 * manifest's record of the source's cluster (cluster-needs.ts). Before
 * anything is created, the server is checked for every role and extension
 * the dump needs; with `createRoles`, missing roles are made as the source
 * had them (attributes and memberships, never a password).
 */
export interface OntoPreflight {
  /** Roles created on the destination (with createRoles). */
  createdRoles: string[];
}

/**
 * Refuse, naming each thing the destination lacks, or return once it lacks
 * nothing. Encoding and locale are not compared with the server's default:
 * the database is created in the source's own (createDatabase, strictLocale).
 */
export async function preflightOnto(
  admin: pg.ClientBase,
  manifest: Manifest,
  createRoles: boolean,
): Promise<OntoPreflight> {
  let found = await ontoProblems(admin, manifest);
  const missing = found.filter((p) => p.kind === 'role').map((p) => p.name);
  const createdRoles = createRoles ? missing : [];
  if (createdRoles.length > 0) {
    await createMissingRoles(admin, recordedNeeds(manifest), createdRoles);
    found = await ontoProblems(admin, manifest);
  }
  if (found.length > 0) {
    const roles = found.some((p) => p.kind === 'role');
    throw new BadInputError(
      `The destination server lacks ${found.length} thing(s) backup ${manifest.id} needs; nothing was created.${roles ? ' Create the roles, or restore with --create-roles (or --no-owner).' : ''}`,
      { details: found.map((p) => p.detail) },
    );
  }
  return { createdRoles };
}

function recordedNeeds(manifest: Manifest): ClusterNeeds {
  if (manifest.needs) return manifest.needs;
  throw new BadInputError(
    `Backup ${manifest.id} does not record what its database needs from a server (it predates the record), so it cannot be checked before restoring onto another server; restore it beside its source, or take a new backup.`,
  );
}

/** What the server `admin` is connected to lacks for the backup. Reads only. */
async function ontoProblems(admin: pg.ClientBase, manifest: Manifest): Promise<PreflightProblem[]> {
  const needs = recordedNeeds(manifest);
  const source = {
    serverVersion: manifest.target.serverVersion,
    serverMajor: manifest.target.serverMajor,
    needs,
  };
  return preflightProblems(source, await readDestinationFacts(admin, needs)).filter(
    (p) => p.kind !== 'encoding' && p.kind !== 'locale',
  );
}

/** What a restore onto another server is asked: the server, the database to create there, the backup. */
export interface OntoRequest {
  /** The other server, with the database to create as its database. */
  target: Target;
  manifest: Manifest;
  /** The destinations holding a copy. */
  copies: string[];
  /** The database to connect to there; absent: postgres, else template1. */
  maintenanceDb?: string;
}

/**
 * `restore ID --to URL [--as NAME]`: the URL's database is where lifeboat
 * connects; the new database takes NAME, else the backup's database name.
 * A backup id needs nothing of the source, which may be gone.
 */
export async function ontoRequest(opts: {
  backupId: string;
  to: string;
  as?: string;
  maintenanceDb?: string;
  config: Config;
  source: Target;
  /** Told when "latest" had to be chosen by database name, the source being unreachable. */
  warn?: (message: string) => void;
}): Promise<OntoRequest> {
  const server = scratchServer(opts.to, opts.source);
  const where = { destinations: opts.config.destinations, key: opts.config.signingKey };
  const entry = await findBackup(opts.backupId, { ...where, target: () => opts.source }).catch(
    async (err: unknown) => {
      // The source's machine may be what was lost: "latest" then goes by the database's name.
      if (opts.backupId !== 'latest' || !(err instanceof ConnectionError)) throw err;
      const found = latestByName(
        await readCatalog(where.destinations, where.key),
        opts.source.database,
      );
      if (!found) {
        throw new BadInputError(
          `The source cannot be reached and no backup of a database named ${opts.source.database} is held; name a backup id (see \`lifeboat backups list\`).`,
          { cause: err },
        );
      }
      opts.warn?.(
        `The source cannot be reached (${errorMessage(err)}); "latest" is the newest backup of a database named ${opts.source.database}: ${found.id}, of ${found.manifest!.target.described}.`,
      );
      return found;
    },
  );
  if (!entry.manifest) {
    throw new VerificationFailedError(
      `Backup ${entry.id} has no readable manifest, so what it needs from a server is unknown; nothing was created.`,
    );
  }
  const name = opts.as ?? entry.manifest.target.database;
  const connectTo = opts.maintenanceDb ?? server.database;
  return {
    target: withDatabase(server, name),
    manifest: entry.manifest,
    copies: entry.copies.map((c) => c.destination),
    ...(connectTo !== name ? { maintenanceDb: connectTo } : {}),
  };
}

/** What `restore --to --dry-run` says: read only, the refusals the restore would reach before creating anything. */
export interface OntoPreview {
  backupId: string;
  server: string;
  restoreAs: string;
  /** The destinations holding a copy; the first intact one is restored. */
  copies: string[];
  /** Roles --create-roles would create. */
  createsRoles: string[];
  problems: string[];
  wouldExit: number;
}

export async function previewOnto(
  opts: OntoRequest & { createRoles: boolean },
): Promise<OntoPreview> {
  const { target, manifest } = opts;
  return withMaintenanceConnection(target, opts.maintenanceDb, async (admin) => {
    const found = await ontoProblems(admin, manifest);
    const createsRoles = opts.createRoles
      ? found.filter((p) => p.kind === 'role').map((p) => p.name)
      : [];
    const problems = opts.createRoles ? found.filter((p) => p.kind !== 'role') : found;
    const taken = (await databaseExists(admin, target.database))
      ? [`a database "${target.database}" already exists there; name another with --as`]
      : [];
    const why = [...taken, ...problems.map((p) => p.detail)];
    return {
      backupId: manifest.id,
      server: serverOf(target),
      restoreAs: target.database,
      copies: opts.copies,
      createsRoles,
      problems: why,
      wouldExit: why.length > 0 ? 2 : 0,
    };
  });
}

/**
 * CREATE ROLE for each missing role, as the source had it, then the
 * memberships among roles that exist by then. In one transaction: a role
 * the connecting user may not create leaves none behind.
 */
async function createMissingRoles(
  admin: pg.ClientBase,
  needs: ClusterNeeds,
  missing: string[],
): Promise<void> {
  const wanted = missing.map(
    (name) =>
      needs.roles.find((r) => r.name === name) ?? {
        name,
        attributes: ['NOLOGIN'],
        memberOf: [],
        owns: 0,
        grantedOn: 0,
        policies: 0,
      },
  );
  const existing = new Set(
    (
      await admin.query<{ name: string }>('select rolname as name from pg_catalog.pg_roles')
    ).rows.map((r) => r.name),
  );
  await admin.query('begin');
  try {
    for (const sql of roleStatements(wanted, existing)) await admin.query(sql);
    await admin.query('commit');
  } catch (err) {
    await admin.query('rollback').catch(() => undefined);
    throw new BadInputError(
      `Could not create the missing roles ${missing.join(', ')} on the destination: ${errorMessage(err)}; none was created.`,
      { cause: err },
    );
  }
}

/** Pure: CREATE ROLE statements, then GRANTs for memberships in roles that exist or are created. */
export function roleStatements(roles: RoleNeed[], existing: Set<string>): string[] {
  const created = new Set(roles.map((r) => r.name));
  const creates = roles.map(
    (r) => `create role ${quoteIdent(r.name)} ${r.attributes.map(attributeSql).join(' ')}`,
  );
  const grants = roles.flatMap((r) =>
    r.memberOf
      .filter((m) => existing.has(m) || created.has(m))
      .map((m) => `grant ${quoteIdent(m)} to ${quoteIdent(r.name)}`),
  );
  return [...creates, ...grants];
}

/** The attributes are recorded as CREATE ROLE spells them; only VALID UNTIL's timestamp needs quoting. */
function attributeSql(attribute: string): string {
  const until = /^VALID UNTIL (.+)$/.exec(attribute);
  if (until) return `VALID UNTIL ${quoteLiteral(until[1]!)}`;
  // Anything else is refused rather than written into SQL: the manifest is input.
  if (!/^([A-Z]+|CONNECTION LIMIT -?\d+)$/.test(attribute)) {
    throw new BadInputError(`The backup records an unknown role attribute: ${attribute}`);
  }
  return attribute;
}

/**
 * The source database's own row as the manifest recorded it, for the
 * properties a restore carries over (owner, settings) and its locale. Its
 * privileges and connection limit were not recorded: the server's defaults.
 */
export function databaseRowFromNeeds(needs: ClusterNeeds, connectedAs: string): DatabaseRow {
  const byRole = new Map<string | null, string[]>();
  for (const s of needs.settings) {
    const role = s.role ?? null;
    byRole.set(role, [...(byRole.get(role) ?? []), `${s.name}=${s.value}`]);
  }
  const d = needs.database;
  const provider = { libc: 'c', icu: 'i', builtin: 'b' }[d.localeProvider] ?? 'c';
  return {
    oid: 0,
    owner: needs.owner ?? connectedAs,
    connlimit: -1,
    hasAcl: false,
    grants: [],
    settings: [...byRole].map(([role, config]) => ({ role, config })),
    locale: {
      collate: d.collate,
      ctype: d.ctype,
      provider,
      ...(d.locale ? { icu: d.locale } : {}),
    },
  };
}

/** The newest backup with a readable manifest of a database of that name, whatever its server. */
function latestByName(entries: CatalogEntry[], database: string): CatalogEntry | undefined {
  return entries
    .filter((e) => e.manifest?.target.database === database)
    .sort((a, b) => b.manifest!.createdAt.localeCompare(a.manifest!.createdAt))[0];
}
