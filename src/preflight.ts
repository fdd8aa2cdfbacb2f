import type pg from 'pg';
import { readDatabaseLocale, type ClusterNeeds, type DatabaseLocale } from './cluster-needs.js';

/**
 * Before a backup is restored onto another server: everything that server
 * lacks for the database, each named, so that nothing is started that would
 * fail halfway. The decision (preflightProblems) is pure; what it decides on
 * is read from the destination by readDestinationFacts.
 */
export interface DestinationFacts {
  serverVersion: string;
  serverMajor: number;
  /** Every role on the destination server. */
  roles: string[];
  /** The extensions the database needs, as the destination offers them; absent: not offered. */
  extensions: Record<string, DestinationExtension>;
  /** The destination database's (or its template's) encoding and locale. */
  database: DatabaseLocale;
}

export interface DestinationExtension {
  defaultVersion: string;
  /** The source's version is the default, or ALTER EXTENSION … UPDATE leads from it to the default. */
  reachable: boolean;
}

export interface PreflightProblem {
  kind: 'version' | 'role' | 'extension' | 'encoding' | 'locale';
  /** The role, extension or setting concerned. */
  name: string;
  detail: string;
}

/** The source's side: what the manifest recorded. */
export interface SourceFacts {
  serverVersion: string;
  serverMajor: number;
  needs: ClusterNeeds;
}

/** Pure: each thing the destination lacks, in a stable order (version, roles, extensions, locale). */
export function preflightProblems(source: SourceFacts, dest: DestinationFacts): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  if (dest.serverMajor < source.serverMajor)
    problems.push({
      kind: 'version',
      name: 'server',
      detail: `the destination runs PostgreSQL ${dest.serverVersion}, older than the source's ${source.serverVersion}: a dump restores only into the same major or a newer one`,
    });

  const roles = new Set(dest.roles);
  const needed = new Map<string, string>();
  for (const r of source.needs.roles)
    needed.set(r.name, `${r.attributes.join(' ')}; ${roleUse(r.owns, r.grantedOn, r.policies)}`);
  for (const s of source.needs.settings)
    if (s.role && !needed.has(s.role)) needed.set(s.role, `has settings in the database`);
  for (const [name, why] of [...needed].sort(([a], [b]) => compareText(a, b)))
    if (!roles.has(name))
      problems.push({ kind: 'role', name, detail: `role ${name} is missing (${why})` });

  for (const e of source.needs.extensions) {
    const offered = dest.extensions[e.name];
    if (!offered)
      problems.push({
        kind: 'extension',
        name: e.name,
        detail: `extension ${e.name} (${e.version} on the source) is not installed on the destination server`,
      });
    else if (!offered.reachable)
      problems.push({
        kind: 'extension',
        name: e.name,
        detail: `extension ${e.name}: the destination's version ${offered.defaultVersion} has no update path from the source's ${e.version}`,
      });
  }

  const [s, d] = [source.needs.database, dest.database];
  if (s.encoding !== d.encoding)
    problems.push({
      kind: 'encoding',
      name: 'encoding',
      detail: `the source database is ${s.encoding}, the destination ${d.encoding}`,
    });
  if (s.localeProvider !== d.localeProvider || (s.locale ?? '') !== (d.locale ?? ''))
    problems.push({
      kind: 'locale',
      name: 'locale provider',
      detail: `the source sorts text with ${localeText(s)}, the destination with ${localeText(d)}: text would sort differently`,
    });
  for (const [name, a, b] of [
    ['collate', s.collate, d.collate],
    ['ctype', s.ctype, d.ctype],
  ] as const)
    if (a !== b)
      problems.push({
        kind: 'locale',
        name,
        detail: `the source's ${name} is ${a}, the destination's ${b}`,
      });
  return problems;
}

function roleUse(owns: number, grantedOn: number, policies: number): string {
  const parts = [
    owns > 0 ? `owns ${owns} object(s)` : '',
    grantedOn > 0 ? `granted on ${grantedOn}` : '',
    policies > 0 ? `named in ${policies} policy(ies)` : '',
  ].filter(Boolean);
  return parts.join(', ') || 'needed by the database';
}

function localeText(l: DatabaseLocale): string {
  return l.locale ? `${l.localeProvider} (${l.locale})` : l.localeProvider;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What the destination `client` is connected to offers for `needs`. The
 * database connected to stands for the one a restore creates there (its
 * encoding and locale). Reads only.
 */
export async function readDestinationFacts(
  client: pg.ClientBase,
  needs: ClusterNeeds,
): Promise<DestinationFacts> {
  const server = await client.query<{ version: string; num: string }>(
    `select current_setting('server_version') as version, current_setting('server_version_num') as num`,
  );
  const roles = await client.query<{ name: string }>(
    'select rolname as name from pg_catalog.pg_roles',
  );
  const extensions: Record<string, DestinationExtension> = {};
  for (const e of needs.extensions) {
    const offered = await client.query<{ default_version: string | null; reachable: boolean }>(
      `select a.default_version,
              a.default_version = $2 or exists (
                select 1 from pg_catalog.pg_extension_update_paths($1)
                 where source = $2 and target = a.default_version and path is not null) as reachable
         from pg_catalog.pg_available_extensions a where a.name = $1`,
      [e.name, e.version],
    );
    const row = offered.rows[0];
    if (row?.default_version)
      extensions[e.name] = { defaultVersion: row.default_version, reachable: row.reachable };
  }
  return {
    serverVersion: server.rows[0]!.version,
    serverMajor: Math.floor(Number(server.rows[0]!.num) / 10000),
    roles: roles.rows.map((r) => r.name),
    extensions,
    database: await readDatabaseLocale(client),
  };
}
