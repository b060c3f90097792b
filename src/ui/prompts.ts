import type { EditableSetting } from '../config/settings.ts';
import { parseExpiry, parseValueArgument } from '../store/exception-input.ts';
import type { ExceptionEntry, ExceptionKind } from '../store/exceptions.ts';

/** Typed to stop a running delete after its batch, or to remove an exception. */
export const STOP_WORD = 'y';
/** Typed to restore a whole backup. */
export const RESTORE_WORD = 'restore';

/** A one-line question the operator answers by typing; Esc cancels. Each names what it acts on. */
export type Prompt = { label: string } & (
  | { id: 'filter' }
  | { id: 'exceptionKind'; subject: { relation: string; id: unknown; reference: unknown } }
  | { id: 'exceptionReason'; subject: { relation: string; kind: ExceptionKind; value: unknown } }
  | {
      id: 'exceptionExpiry';
      subject: { relation: string; kind: ExceptionKind; value: unknown; reason: string };
    }
  /** The relation the typed `d:<id>` or `r:<reference>` is allow-listed in. */
  | { id: 'exceptionValue'; subject: string }
  /** The relation whose name (or override phrase) must be typed. */
  | { id: 'confirmName' | 'overridePhrase'; subject: string }
  | { id: 'confirmStop' | 'confirmQuit' }
  | { id: 'confirmRemove'; subject: ExceptionEntry }
  | { id: 'editSetting'; subject: EditableSetting }
  /** The backup directory restored from. */
  | { id: 'confirmRestore'; subject: string }
  /** `ref`: the reference found with `/`, restored when the answer is empty. */
  | { id: 'restoreRef'; subject: string; ref?: string }
  | { id: 'findRef' }
);

/** What an answer asks the console to do. */
export type Answer =
  | { do: 'filter'; filter: string }
  /** The answer does not fit: the same question stays open, with what was wrong. */
  | { do: 'reask'; warning: string }
  | { do: 'settle'; accepted: boolean }
  | { do: 'stop'; quit: boolean }
  | { do: 'askReason'; relation: string; kind: ExceptionKind; value: unknown }
  | { do: 'askExpiry'; relation: string; kind: ExceptionKind; value: unknown; reason: string }
  | {
      do: 'addException';
      relation: string;
      kind: ExceptionKind;
      value: unknown;
      reason: string;
      expiresAt?: Date;
    }
  | { do: 'removeException'; entry: ExceptionEntry }
  | { do: 'updateSetting'; field: EditableSetting; text: string }
  | { do: 'restore'; dir: string; ref?: string }
  | { do: 'find'; ref: string }
  | { do: 'warn'; text: string }
  | { do: 'nothing' };

/** The answer to a prompt, from what was typed: pure, so every rule is tested without a terminal. */
export function answerPrompt(prompt: Prompt, typed: string, now = new Date()): Answer {
  const text = typed.trim();
  switch (prompt.id) {
    case 'filter':
      return { do: 'filter', filter: text };
    case 'overridePhrase':
    case 'confirmName': {
      const expected = prompt.id === 'overridePhrase' ? `override ${prompt.subject}` : prompt.subject;
      return text === expected
        ? { do: 'settle', accepted: true }
        : {
            do: 'reask',
            warning: `typed "${text}", expected "${expected}": nothing deleted yet; type it again, or Esc cancels`,
          };
    }
    case 'confirmStop':
    case 'confirmQuit':
      return text.toLowerCase() === STOP_WORD
        ? { do: 'stop', quit: prompt.id === 'confirmQuit' }
        : { do: 'nothing' };
    case 'exceptionKind': {
      const { relation, id, reference } = prompt.subject;
      if (text === 'd') return { do: 'askReason', relation, kind: 'document', value: id };
      if (text === 'r') return { do: 'askReason', relation, kind: 'reference', value: reference };
      return {
        do: 'reask',
        warning: `"${text}": type d (this document) or r (every child of this reference)`,
      };
    }
    case 'exceptionReason':
      return text
        ? { do: 'askExpiry', ...prompt.subject, reason: text }
        : { do: 'reask', warning: 'a reason is required (Esc cancels): nothing was added yet' };
    case 'exceptionExpiry': {
      if (!text) return { do: 'addException', ...prompt.subject };
      try {
        return { do: 'addException', ...prompt.subject, expiresAt: parseExpiry(text, now) };
      } catch (error) {
        return {
          do: 'reask',
          warning: `${(error as Error).message.replace(/^--expires /, '')} (Enter alone: never expires)`,
        };
      }
    }
    case 'exceptionValue': {
      const match = /^([dr]):(.+)$/.exec(text);
      if (!match) return { do: 'reask', warning: `"${text}": type d:<child _id> or r:<reference>` };
      return {
        do: 'askReason',
        relation: prompt.subject,
        kind: match[1] === 'd' ? 'document' : 'reference',
        value: parseValueArgument(match[2]),
      };
    }
    case 'confirmRemove':
      return text.toLowerCase() === STOP_WORD
        ? { do: 'removeException', entry: prompt.subject }
        : { do: 'nothing' };
    case 'editSetting':
      return { do: 'updateSetting', field: prompt.subject, text };
    case 'confirmRestore':
      return text === RESTORE_WORD
        ? { do: 'restore', dir: prompt.subject }
        : {
            do: 'reask',
            warning: `typed "${text}", expected "${RESTORE_WORD}": nothing restored yet; type it again, or Esc cancels`,
          };
    case 'restoreRef':
      return text || prompt.ref
        ? { do: 'restore', dir: prompt.subject, ref: text || prompt.ref }
        : { do: 'nothing' };
    case 'findRef':
      // Empty: every backup is listed again.
      return { do: 'find', ref: text };
  }
}
