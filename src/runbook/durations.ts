import ms from 'ms';

/** PostgreSQL timeouts and Node timers both stop at 2^31 - 1 milliseconds (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;

const WITH_UNIT = /^\d+(?:\.\d+)?\s*[a-z]+$/i;

/**
 * A duration as people write it (`90s`, `15m`, `1h`, `7d`), in milliseconds.
 * A bare number is refused: whether `30` means seconds or milliseconds is
 * exactly the kind of guess a runbook should not leave to the reader.
 */
export function parseDuration(value: unknown): number | string {
  if (typeof value !== 'string' || !WITH_UNIT.test(value.trim())) {
    return `write a duration with its unit, like 90s, 15m, 1h or 7d (got ${JSON.stringify(value)})`;
  }
  const millis = ms(value.trim() as ms.StringValue) as number | undefined;
  if (millis === undefined || !Number.isFinite(millis)) {
    return `unknown duration unit in ${JSON.stringify(value)}: use ms, s, m, h, d, w or y`;
  }
  if (millis <= 0) return 'a duration must be longer than zero';
  return millis;
}
