import { ObjectId } from 'bson';
import { describe, expect, it } from 'vitest';
import type { ExceptionEntry } from '../../src/store/exceptions.ts';
import { answerPrompt, type Prompt } from '../../src/ui/prompts.ts';

const label = 'question';

describe('answerPrompt', () => {
  it('a delete goes ahead only on the exact relation name, or the exact override phrase', () => {
    const confirm: Prompt = { id: 'confirmName', label, subject: 'content_embeddings' };
    expect(answerPrompt(confirm, '  content_embeddings ')).toEqual({ do: 'settle', accepted: true });
    // A wrong answer keeps the question open, saying what was typed and what was expected.
    expect(answerPrompt(confirm, 'content_embedding')).toEqual({
      do: 'reask',
      warning:
        'typed "content_embedding", expected "content_embeddings": nothing deleted yet; type it again, or Esc cancels',
    });
    const override: Prompt = { id: 'overridePhrase', label, subject: 'recaps' };
    expect(answerPrompt(override, 'override recaps')).toEqual({ do: 'settle', accepted: true });
    expect(answerPrompt(override, 'recaps')).toMatchObject({ do: 'reask' });
  });

  it('stops a running delete only on y; a whole restore only on "restore"', () => {
    expect(answerPrompt({ id: 'confirmStop', label }, 'Y')).toEqual({ do: 'stop', quit: false });
    expect(answerPrompt({ id: 'confirmQuit', label }, 'y')).toEqual({ do: 'stop', quit: true });
    expect(answerPrompt({ id: 'confirmStop', label }, 'yes please')).toEqual({ do: 'nothing' });
    expect(answerPrompt({ id: 'confirmRestore', label, subject: '/b/run' }, 'restore')).toEqual({
      do: 'restore',
      dir: '/b/run',
    });
    expect(answerPrompt({ id: 'confirmRestore', label, subject: '/b/run' }, 'y')).toMatchObject({
      do: 'reask',
    });
    expect(answerPrompt({ id: 'restoreRef', label, subject: '/b/run' }, ' 42 ')).toEqual({
      do: 'restore',
      dir: '/b/run',
      ref: '42',
    });
    expect(answerPrompt({ id: 'restoreRef', label, subject: '/b/run' }, '')).toEqual({ do: 'nothing' });
  });

  it('allow-listing: d or r picks the value, a reason is required, d:/r: parses the value typed', () => {
    const id = new ObjectId();
    const kind: Prompt = { id: 'exceptionKind', label, subject: { relation: 'rel', id, reference: 'ref-1' } };
    expect(answerPrompt(kind, 'd')).toEqual({
      do: 'askReason',
      relation: 'rel',
      kind: 'document',
      value: id,
    });
    expect(answerPrompt(kind, 'r')).toEqual({
      do: 'askReason',
      relation: 'rel',
      kind: 'reference',
      value: 'ref-1',
    });
    expect(answerPrompt(kind, 'x')).toMatchObject({ do: 'reask' });
    const reason: Prompt = {
      id: 'exceptionReason',
      label,
      subject: { relation: 'rel', kind: 'document', value: id },
    };
    expect(answerPrompt(reason, '   ')).toEqual({
      do: 'reask',
      warning: 'a reason is required (Esc cancels): nothing was added yet',
    });
    expect(answerPrompt(reason, 'legal hold')).toEqual({
      do: 'askExpiry',
      relation: 'rel',
      kind: 'document',
      value: id,
      reason: 'legal hold',
    });
    const expiry: Prompt = {
      id: 'exceptionExpiry',
      label,
      subject: { relation: 'rel', kind: 'document', value: id, reason: 'legal hold' },
    };
    const now = new Date('2026-11-30T12:00:00Z');
    expect(answerPrompt(expiry, '', now)).toEqual({ do: 'addException', ...expiry.subject });
    expect(answerPrompt(expiry, '12h', now)).toEqual({
      do: 'addException',
      ...expiry.subject,
      expiresAt: new Date('2026-12-01T00:00:00Z'),
    });
    expect(answerPrompt(expiry, 'soon', now)).toMatchObject({
      do: 'reask',
      warning: expect.stringMatching(/^soon: expected 30d/),
    });
    expect(answerPrompt(expiry, '2026-01-01', now)).toMatchObject({
      do: 'reask',
      warning: expect.stringMatching(/in the past/),
    });
    const value: Prompt = { id: 'exceptionValue', label, subject: 'rel' };
    expect(answerPrompt(value, `d:${id.toHexString()}`)).toEqual({
      do: 'askReason',
      relation: 'rel',
      kind: 'document',
      value: id,
    });
    expect(answerPrompt(value, 'r:{"$numberLong": "9007199254740993"}')).toMatchObject({ kind: 'reference' });
    expect(answerPrompt(value, 'zzz')).toEqual({
      do: 'reask',
      warning: '"zzz": type d:<child _id> or r:<reference>',
    });
  });

  it('removes an exception only on y; filters and settings take the text as typed', () => {
    const entry = { relation: 'rel' } as ExceptionEntry;
    expect(answerPrompt({ id: 'confirmRemove', label, subject: entry }, 'y')).toEqual({
      do: 'removeException',
      entry,
    });
    expect(answerPrompt({ id: 'confirmRemove', label, subject: entry }, 'n')).toEqual({ do: 'nothing' });
    expect(answerPrompt({ id: 'filter', label }, ' abc ')).toEqual({ do: 'filter', filter: 'abc' });
    expect(answerPrompt({ id: 'editSetting', label, subject: 'batchSize' }, '250')).toEqual({
      do: 'updateSetting',
      field: 'batchSize',
      text: '250',
    });
  });
});
