import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db.js';
import type { DatabaseRow } from './database-properties.js';
import { createdbGap, privilegeError } from '../privileges.js';
import { nameTaken } from './names.js';
import { sqlState } from './sql-state.js';

/**
 * From template0, as pg_restore expects, in the backup's encoding; with the
 * target's collation and character classes when the backup is of the target,
 * so that a swapped-in copy sorts as the original did. Falls back to the
 * server's defaults, then to the C locale (which fits every encoding).
 */
export async function createDatabase(
  admin: pg.ClientBase,
  name: string,
  encoding: string,
  like: DatabaseRow | undefined,
  warn: (message: string) => void,
): Promise<void> {
  const base = `create database ${quoteIdent(name)} template template0 encoding ${quoteLiteral(encoding)}`;
  const attempts = [base, `${base} locale 'C'`];
  const locale = like ? localeOptions(like) : '';
  if (locale) attempts.unshift(`${base} ${locale}`);
  for (const [i, sql] of attempts.entries()) {
    try {
      await admin.query(sql);
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
      const code = sqlState(err);
      if (code === '42P04') throw nameTaken(name);
      if (code === '42501') {
        const role = await admin.query<{ r: string }>('select current_user as r');
        throw privilegeError([createdbGap(role.rows[0]!.r)], 'A restore');
      }
      if (i === attempts.length - 1) throw err;
    }
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
