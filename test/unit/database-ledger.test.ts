import { describe, expect, it } from 'vitest';
import { carriesToken, databaseToken } from '../../src/database-ledger.js';
import { restoredName, suffixedName } from '../../src/restore/databases.js';

describe('carriesToken: which names a ledger entry may drop unmarked', () => {
  it('accepts the names lifeboat creates', () => {
    const token = databaseToken();
    expect(carriesToken(`lifeboat_verify_20261128143000_${token}`, token)).toBe(true);
    const restored = restoredName('shop', new Date());
    expect(carriesToken(restored.name, restored.token)).toBe(true);
    expect(carriesToken(suffixedName('x'.repeat(80), `__restoring_${token}`), token)).toBe(true);
  });

  it("refuses a user's database that merely ends in _<8 hex>, and a malformed token", () => {
    expect(carriesToken('app_1a2b3c4d', '1a2b3c4d')).toBe(false);
    expect(carriesToken('billing_2026_1a2b3c4d', '1a2b3c4d')).toBe(false);
    expect(carriesToken('lifeboat_verify_20261128143000_1a2b3c4d', '1a2b3c4e')).toBe(false);
    expect(carriesToken('x_20261128143000_.*', '.*')).toBe(false);
  });
});
