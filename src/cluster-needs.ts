import type pg from 'pg';

/**
 * What a database needs from the cluster it lives in and a dump does not
 * carry: the roles that own its objects or hold grants in it, the settings
 * kept for it outside the dump (ALTER DATABASE … SET, ALTER ROLE … IN
 * DATABASE … SET), its extensions with their versions, and its encoding and
 * locale. Recorded in a backup's manifest so that a restore onto another
 * server can say before starting what that server lacks. Read from catalogs
 * any role may read: no password hash is ever read.
 */
export interface ClusterNeeds {
  roles: RoleNeed[];
  settings: DatabaseSetting[];
  extensions: { name: string; version: string; schema: string }[];
  database: DatabaseLocale;
  /** The role that owns the database (absent in backups made before it was recorded). */
  owner?: string;
}

export interface RoleNeed {
  name: string;
  /** As CREATE ROLE spells them: LOGIN or NOLOGIN, SUPERUSER, CREATEDB, … */
  attributes: string[];
  /** Roles it is a member of. */
  memberOf: string[];
  /** Objects of the database (the database itself included) it owns. */
  owns: number;
  /** Objects it holds privileges on, granted by another role. */
  grantedOn: number;
  /** Row-level security policies that name it. */
  policies: number;
}

export interface DatabaseSetting {
  /** Absent: ALTER DATABASE … SET; else ALTER ROLE role IN DATABASE … SET. */
  role?: string;
  name: string;
  value: string;
}

export interface DatabaseLocale {
  encoding: string;
  collate: string;
  ctype: string;
  /** `libc`, `icu` or `builtin`: the one provider before PostgreSQL 15 was libc. */
  localeProvider: string;
  /** The ICU or builtin locale, when the provider has one. */
  locale?: string;
}

/**
 * Owner, grant and policy dependencies on roles, from pg_shdepend: the
 * database's own objects and the database itself. Extension members are left
 * out (CREATE EXTENSION recreates them, as whoever restores). The bootstrap
 * superuser (oid 10) is pinned, so nothing is recorded for it there: what it
 * owns is counted from the catalogs' owner columns instead.
 */
const ROLES = `
with db as (select oid, datdba from pg_catalog.pg_database where datname = pg_catalog.current_database()),
ext as (select classid, objid from pg_catalog.pg_depend where deptype = 'e'),
dep as (
  select s.refobjid as role, s.deptype
    from pg_catalog.pg_shdepend s, db
   where s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
     and s.deptype in ('o', 'a', 'r')
     and (s.dbid = db.oid
          or (s.dbid = 0 and s.classid = 'pg_catalog.pg_database'::pg_catalog.regclass and s.objid = db.oid))
     and (s.classid, s.objid) not in (select classid, objid from ext)
  union all
  select 10, 'o' from (
    select 1 from db where datdba = 10
    union all
    select 1 from pg_catalog.pg_namespace n
     where n.nspowner = 10 and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
       and (n.tableoid, n.oid) not in (select classid, objid from ext)
    union all
    select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.relowner = 10 and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
       and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
       and (c.tableoid, c.oid) not in (select classid, objid from ext)
    union all
    select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where p.proowner = 10 and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
       and (p.tableoid, p.oid) not in (select classid, objid from ext)
    union all
    select 1 from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace
     where t.typowner = 10 and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
       and (t.typtype in ('e', 'd', 'r')
            or (t.typtype = 'c' and exists (select 1 from pg_catalog.pg_class c
                                             where c.oid = t.typrelid and c.relkind = 'c')))
       and (t.tableoid, t.oid) not in (select classid, objid from ext)
    union all
    select 1 from pg_catalog.pg_largeobject_metadata where lomowner = 10
  ) owned
)
select r.rolname as name,
       r.rolsuper as superuser, r.rolinherit as inherit, r.rolcreaterole as createrole,
       r.rolcreatedb as createdb, r.rolcanlogin as login, r.rolreplication as replication,
       r.rolbypassrls as bypassrls, r.rolconnlimit as connlimit,
       pg_catalog.to_char(r.rolvaliduntil at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as valid_until,
       array(select m.rolname::text from pg_catalog.pg_auth_members am
               join pg_catalog.pg_roles m on m.oid = am.roleid
              where am.member = r.oid order by 1) as member_of,
       count(*) filter (where dep.deptype = 'o')::int as owns,
       count(*) filter (where dep.deptype = 'a')::int as granted_on,
       count(*) filter (where dep.deptype = 'r')::int as policies
  from dep join pg_catalog.pg_roles r on r.oid = dep.role
 group by r.oid, r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
          r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil
 order by r.rolname collate "C"`;

const SETTINGS = `
select r.rolname as role, s.setconfig as config
  from pg_catalog.pg_db_role_setting s
  left join pg_catalog.pg_roles r on r.oid = s.setrole
 where s.setdatabase = (select oid from pg_catalog.pg_database where datname = pg_catalog.current_database())
 order by s.setrole <> 0, r.rolname collate "C"`;

const EXTENSIONS = `
select e.extname as name, e.extversion as version, n.nspname as schema
  from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
 order by e.extname collate "C"`;

/** Every column of the database's row, whatever the major (the locale columns moved over time). */
const DATABASE = `
select pg_catalog.to_jsonb(d) - 'datacl' as row,
       pg_catalog.pg_encoding_to_char(d.encoding) as encoding
  from pg_catalog.pg_database d where d.datname = pg_catalog.current_database()`;

interface RoleRow {
  name: string;
  superuser: boolean;
  inherit: boolean;
  createrole: boolean;
  createdb: boolean;
  login: boolean;
  replication: boolean;
  bypassrls: boolean;
  connlimit: number;
  valid_until: string | null;
  member_of: string[];
  owns: number;
  granted_on: number;
  policies: number;
}

/**
 * lifeboat's own marks are not the database's settings: `lifeboat.*`, and
 * the read-only default of a freeze that names its run or move. A backup of
 * a frozen database would otherwise carry the freeze to wherever it is
 * restored.
 */
function ownSettingsLeftOut(config: string[]): string[] {
  const frozen = config.some((entry) => entry.startsWith('lifeboat.frozen_by='));
  return config.filter(
    (entry) =>
      !entry.startsWith('lifeboat.') &&
      !(frozen && entry.startsWith('default_transaction_read_only=')),
  );
}

/** Reads what the database `client` is connected to needs from its cluster. Reads only. */
export async function readClusterNeeds(client: pg.ClientBase): Promise<ClusterNeeds> {
  const roles = await client.query<RoleRow>(ROLES);
  const settings = await client.query<{ role: string | null; config: string[] }>(SETTINGS);
  const extensions = await client.query<ClusterNeeds['extensions'][number]>(EXTENSIONS);
  const owner = await client.query<{ owner: string }>(
    `select pg_catalog.pg_get_userbyid(datdba)::text as owner
       from pg_catalog.pg_database where datname = pg_catalog.current_database()`,
  );
  return {
    roles: roles.rows.map(roleNeed),
    settings: settings.rows.flatMap(({ role, config }) =>
      ownSettingsLeftOut(config).map((entry) => {
        const at = entry.indexOf('=');
        return {
          ...(role ? { role } : {}),
          name: entry.slice(0, at),
          value: entry.slice(at + 1),
        };
      }),
    ),
    extensions: extensions.rows,
    database: await readDatabaseLocale(client),
    owner: owner.rows[0]!.owner,
  };
}

/** The encoding and locale of the database `client` is connected to. */
export async function readDatabaseLocale(client: pg.ClientBase): Promise<DatabaseLocale> {
  const res = await client.query<{ row: Record<string, unknown>; encoding: string }>(DATABASE);
  return databaseLocale(res.rows[0]!.row, res.rows[0]!.encoding);
}

function roleNeed(r: RoleRow): RoleNeed {
  const flag = (on: boolean, name: string): string[] => (on ? [name] : []);
  return {
    name: r.name,
    attributes: [
      r.login ? 'LOGIN' : 'NOLOGIN',
      ...flag(r.superuser, 'SUPERUSER'),
      ...flag(r.createdb, 'CREATEDB'),
      ...flag(r.createrole, 'CREATEROLE'),
      ...flag(!r.inherit, 'NOINHERIT'),
      ...flag(r.replication, 'REPLICATION'),
      ...flag(r.bypassrls, 'BYPASSRLS'),
      ...flag(r.connlimit >= 0, `CONNECTION LIMIT ${r.connlimit}`),
      ...flag(r.valid_until !== null, `VALID UNTIL ${r.valid_until}`),
    ],
    memberOf: r.member_of,
    owns: r.owns,
    grantedOn: r.granted_on,
    policies: r.policies,
  };
}

/** pg_database's locale columns as each major names them (datlocale from 17, daticulocale in 15 and 16). */
function databaseLocale(row: Record<string, unknown>, encoding: string): DatabaseLocale {
  const text = (key: string): string | undefined =>
    typeof row[key] === 'string' && row[key] !== '' ? row[key] : undefined;
  const provider = { c: 'libc', i: 'icu', b: 'builtin' }[text('datlocprovider') ?? 'c'] ?? 'libc';
  const locale = text('datlocale') ?? text('daticulocale');
  return {
    encoding,
    collate: text('datcollate') ?? '',
    ctype: text('datctype') ?? '',
    localeProvider: provider,
    ...(locale && provider !== 'libc' ? { locale } : {}),
  };
}

/** The needs as `backups show` prints them, one kind a line. */
export function needsLines(needs: ClusterNeeds | undefined): string[] {
  if (!needs) return ['  needs      not recorded (the backup predates the record)'];
  const roles = needs.roles.map((r) => {
    const what = [
      r.owns > 0 ? `owns ${r.owns}` : '',
      r.grantedOn > 0 ? `granted on ${r.grantedOn}` : '',
      r.policies > 0 ? `in ${r.policies} polic${r.policies === 1 ? 'y' : 'ies'}` : '',
      r.memberOf.length > 0 ? `member of ${r.memberOf.join(', ')}` : '',
    ].filter(Boolean);
    return `${r.name} (${[r.attributes.join(' '), ...what].join('; ')})`;
  });
  const settings = needs.settings.map(
    (s) => `${s.role ? `for ${s.role}: ` : ''}${s.name}=${s.value}`,
  );
  const d = needs.database;
  return [
    `  roles      ${roles.join(', ') || 'none'}`,
    `  extensions ${needs.extensions.map((e) => `${e.name} ${e.version} (${e.schema})`).join(', ') || 'none'}`,
    `  settings   ${settings.join(', ') || 'none'}`,
    `  locale     ${d.encoding}, ${d.localeProvider}${d.locale ? ` ${d.locale}` : ''}, collate ${d.collate}, ctype ${d.ctype}`,
  ];
}
