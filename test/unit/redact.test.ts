import { describe, expect, it } from 'vitest';
import { redact, rememberSecretsOf } from '../../src/mongo/redact.ts';
import { AWKWARD_PASSWORDS, recognisableParts } from '../support/passwords.ts';

// Every channel (stderr, logs, runs records, audit, manifests, serve's JSON) prints through redact(); these are
// the shapes a password takes there.

describe('redact', () => {
  it('removes a password whatever it holds, in every shape a message or a log line carries it', () => {
    for (const password of AWKWARD_PASSWORDS) {
      const uri = `mongodb://alice:${password}@db1.example.com:27017,db2.example.com:27018/olorin?authSource=admin`;
      rememberSecretsOf(uri);
      const shapes = [
        uri,
        `source olorin (${uri}): authentication failed`,
        `"${uri}"`,
        JSON.stringify({ error: `connect ${uri} failed`, uri }),
        `the password was ${password} all along`,
        `mongodb+srv://alice:${password}@cluster0.example.net/?retryWrites=true`,
      ];
      for (const shape of shapes) {
        const out = redact(shape);
        for (const part of recognisableParts(password)) expect(out, shape).not.toContain(part);
      }
      expect(redact(`source olorin (${uri}): authentication failed`)).toBe(
        'source olorin (mongodb://****@db1.example.com:27017,db2.example.com:27018/olorin?authSource=admin): authentication failed',
      );
    }
  });

  it('leaves text without credentials as it is', () => {
    for (const text of [
      'mongodb://db1.example.com:27017/olorin',
      'scan of content_embeddings failed: timed out',
      'mail alice@example.com',
    ])
      expect(redact(text)).toBe(text);
  });
});
