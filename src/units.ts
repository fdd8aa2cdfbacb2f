import ms from 'ms';

/** PostgreSQL timeouts and Node timers both stop at 2^31 - 1 milliseconds (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;

const WITH_UNIT = /^\d+(?:\.\d+)?\s*[a-z]+$/i;

/**
 * A duration as people write it (`90s`, `15m`, `1h`, `7d`), in milliseconds,
 * or the sentence that says why it is not one. A bare number is refused:
 * whether `30` means seconds or milliseconds is exactly the kind of guess a
 * runbook or a config should not leave to the reader. Zero is refused unless
 * `zero` allows it (a wait of 0s means: do not wait).
 */
export function parseDuration(value: unknown, opts: { zero?: boolean } = {}): number | string {
  if (typeof value !== 'string' || !WITH_UNIT.test(value.trim())) {
    return `write a duration with its unit, like 90s, 15m, 1h or 7d (got ${JSON.stringify(value)})`;
  }
  const millis = ms(value.trim() as ms.StringValue) as number | undefined;
  if (millis === undefined || !Number.isFinite(millis)) {
    return `unknown duration unit in ${JSON.stringify(value)}: use ms, s, m, h, d, w or y`;
  }
  if (millis < 0 || (millis === 0 && !opts.zero)) return 'a duration must be longer than zero';
  return millis;
}

export function formatDuration(millis: number): string {
  if (millis < 1000) return `${Math.round(millis)}ms`;
  const s = millis / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24 === 0 ? '' : `${h % 24}h`}`;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(1)} ${units[i]}`;
}
