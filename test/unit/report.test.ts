import { describe, expect, it } from 'vitest';
import { gateJunit, markdownReport } from '../../src/report.js';

describe('markdownReport', () => {
  it('reports a failure that carries no data (a connection error) without choking', () => {
    const md = markdownReport({
      command: 'gate',
      ok: false,
      exitCode: 2,
      at: '2026-11-21T10:00:00.000Z',
      doc: { gate: {} },
      error: { message: 'Cannot connect to app@db:5432/shop: connection refused.', details: [] },
    });
    expect(md).toBe(
      '## lifeboat gate: FAILED (exit 2)\n\n2026-11-21T10:00:00.000Z\n\n**Cannot connect to app@db:5432/shop: connection refused.**\n',
    );
  });

  it('lists a run’s steps with outcome, duration and error, escaping table pipes', () => {
    const md = markdownReport({
      command: 'run',
      ok: false,
      exitCode: 5,
      at: 't',
      doc: {
        run: {
          runId: 'run-1',
          runbook: 'rb',
          backupId: 'b1',
          status: 'rolled-back',
          steps: [{ id: 'a', outcome: 'failed', durationMs: 1500, error: 'x | y' }],
          rollback: { proof: { equal: true, differences: [] } },
        },
      },
    });
    expect(md).toContain('| a | failed | 1.5s | x \\| y |');
    expect(md).toContain(
      'Rollback proof: the fingerprints after rollback equal those taken before the first step.',
    );
  });
});

describe('gateJunit', () => {
  it('escapes XML and counts failures', () => {
    const xml = gateJunit({
      ok: false,
      target: 'a<b',
      checks: [{ name: 'x & y' }, { name: 'z', failure: '"bad"' }],
      seconds: 0.5,
    });
    expect(xml).toContain('<testsuites name="lifeboat gate" tests="2" failures="1" time="0.500">');
    expect(xml).toContain('<testsuite name="lifeboat gate a&lt;b"');
    expect(xml).toContain('<testcase classname="lifeboat.gate" name="x &amp; y"/>');
    expect(xml).toContain('<failure message="&quot;bad&quot;">&quot;bad&quot;</failure>');
  });
});
