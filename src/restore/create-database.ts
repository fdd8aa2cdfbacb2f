import type pg from 'pg';
import { quoteIdent, quoteLiteral, sqlState } from '../db.js';
import { BadInputError } from '../errors.js';
import type { DatabaseRow } from './database-properties.js';
import { createdbGap, privilegeError } from '../privileges.js';
import { nameTaken } from './names.js';

/**
 * From template0, as pg_restore expects, in the backup's encoding; with the
 * target's collation and character classes when the backup is of the target,
 * so that a swapped-in copy sorts as the original did. Falls back to the
 * server's defaults, then to the C locale (which fits every encoding).
 * `what` names the database in a refusal for want of privileges.
 */
export async function createDatabase(
  admin: pg.ClientBase,
  name: string,
  how: {
    encoding?: string;
    like?: DatabaseRow;
    what: 'A restore' | 'A scratch database';
    warn: (message: string) => void;
  },
): Promise<void> {
  const { encoding, like, warn } = how;
  const base = `create database ${quoteIdent(name)} template template0`;
  if (!encoding) return void (await attempt(admin, name, base, how.what));
  const encoded = `${base} encoding ${quoteLiteral(encoding)}`;
  const attempts = [encoded, `${encoded} locale 'C'`];
  const locale = like ? localeOptions(like) : '';
  if (locale) attempts.unshift(`${encoded} ${locale}`);
  for (const [i, sql] of attempts.entries()) {
    try {
      await attempt(admin, name, sql, how.what);
      if (i === attempts.length - 1) {
        warn(
          `${name} was created with the C locale: the server's default locale does not fit ${encoding}.`,
        );
      } else if (i > 0) {
        warn(
          `${name} was created with the server's default locale: the target's (${locale}) was refused.`,
        );
      }
      return;
    } catch (err) {
      if (err instanceof BadInputError || i === attempts.length - 1) throw err;
    }
  }
}

/** One `create database`: a name taken and a role that may not create databases are refusals. */
async function attempt(
  admin: pg.ClientBase,
  name: string,
  sql: string,
  what: string,
): Promise<void> {
  try {
    await admin.query(sql);
  } catch (err) {
    const code = sqlState(err);
    if (code === '42P04') throw nameTaken(name);
    if (code === '42501') {
      // Not a verdict on the backup: the role may not create databases here.
      const role = await admin.query<{ r: string }>('select current_user as r');
      throw privilegeError([createdbGap(role.rows[0]!.r)], what);
    }
    throw err;
  }
}

function localeOptions(like: DatabaseRow): string {
  const l = like.locale;
  if (!l.collate || !l.ctype) return '';
  const opts = [`lc_collate ${quoteLiteral(l.collate)}`, `lc_ctype ${quoteLiteral(l.ctype)}`];
  if (l.provider === 'i' && l.icu) {
    opts.push('locale_provider icu', `icu_locale ${quoteLiteral(l.icu)}`);
    if (l.icuRules) opts.push(`icu_rules ${quoteLiteral(l.icuRules)}`);
  } else if (l.provider === 'b' && l.icu) {
    opts.push('locale_provider builtin', `builtin_locale ${quoteLiteral(l.icu)}`);
  } else if (l.provider === 'c') {
    opts.push('locale_provider libc');
  }
  return opts.join(' ');
}
