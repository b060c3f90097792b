import { EJSON } from 'bson';
import { z } from 'zod';
import type { Relation } from '../config/load.ts';
import { UsageError } from '../errors.ts';
import { readRegularFile } from '../paths.ts';
import { escapeForTerminal } from '../terminal-text.ts';
import { displayValue } from '../mongo/keys.ts';
import { describeForm, existingForm } from '../store/exception-forms.ts';
import { assertFuture, calendarDate, parseExpiry, parseValueArgument } from '../store/exception-input.ts';
import {
  addOutcomeText,
  type ExceptionEntry,
  type ExceptionKind,
  ExceptionsStore,
  exceptionKey,
} from '../store/exceptions.ts';
import { currentOperator } from '../store/runs.ts';
import { type EngineFlags, type EngineSession, withEngine } from './engine-session.ts';

export interface ExceptionFlags extends EngineFlags {
  doc?: string;
  ref?: string;
  reason?: string;
  expires?: string;
  json?: boolean;
  operator?: string;
}

function oneRelation(session: EngineSession, flags: ExceptionFlags): Relation {
  if (flags.relation?.length !== 1) throw new UsageError('--relation: name exactly one relation');
  return session.config.relations[0];
}

function target(flags: ExceptionFlags): { kind: ExceptionKind; value: unknown } {
  if ((flags.doc === undefined) === (flags.ref === undefined))
    throw new UsageError('give exactly one of --doc ID or --ref VALUE');
  return flags.doc !== undefined
    ? { kind: 'document', value: parseValueArgument(flags.doc) }
    : { kind: 'reference', value: parseValueArgument(flags.ref!) };
}

async function storeFor(session: EngineSession, relation: Relation): Promise<ExceptionsStore> {
  return new ExceptionsStore(await session.pool.primaryDb(relation.child.source), session.access);
}

function entryLine(entry: ExceptionEntry): string {
  const expiry = entry.expiresAt ? `expires ${entry.expiresAt.toISOString()}` : 'no expiry';
  return `${entry.relation}  ${entry.kind} ${displayValue(entry.value)}  "${escapeForTerminal(entry.reason)}"  by ${escapeForTerminal(entry.createdBy)} ${entry.createdAt.toISOString()}  ${expiry}`;
}

async function listAll(session: EngineSession): Promise<ExceptionEntry[]> {
  const entries: ExceptionEntry[] = [];
  const seen = new Set<string>();
  for (const relation of session.config.relations) {
    const db = await session.pool.primaryDb(relation.child.source);
    const scope = `${relation.child.source}/${db.databaseName}`;
    const list = await new ExceptionsStore(db, session.access).list(relation.name);
    if (!seen.has(`${scope}/${relation.name}`)) entries.push(...list);
    seen.add(`${scope}/${relation.name}`);
  }
  return entries;
}

/** A date as a person writes it in JSON: an ISO string (or Extended JSON's `$date`), said plainly when it is not. */
const isoDate = z.unknown().transform((value, ctx) => {
  const date = value instanceof Date ? value : typeof value === 'string' ? calendarDate(value) : undefined;
  if (date && !Number.isNaN(date.getTime())) return date;
  ctx.addIssue({
    code: 'custom',
    message: `expected an ISO date such as "2026-12-31T00:00:00Z", not ${JSON.stringify(value) ?? 'nothing'}`,
  });
  return z.NEVER;
});

const importedEntry = z.strictObject(
  {
    relation: z.string({ error: 'expected the relation name' }),
    kind: z.enum(['document', 'reference'], { error: 'expected "document" or "reference"' }),
    value: z.unknown().refine((v) => v !== undefined, 'expected the document _id or the reference'),
    reason: z.string({ error: 'expected a reason' }).trim().min(1, 'expected a reason'),
    createdBy: z.string().optional(),
    createdAt: isoDate.optional(),
    expiresAt: isoDate.nullable().optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (known: relation, kind, value, reason, createdBy, createdAt, expiresAt)`
        : undefined,
  },
);

/** `orphan-cleanup exceptions list|add|remove|export|import`. */
export async function runExceptionsCommand(
  action: string,
  file: string | undefined,
  flags: ExceptionFlags,
): Promise<number> {
  const actions = ['list', 'add', 'remove', 'export', 'import'];
  if (!actions.includes(action))
    throw new UsageError(`exceptions: unknown action '${action}' (expected ${actions.join(', ')})`);
  if (action === 'add' && !flags.reason?.trim()) throw new UsageError('exceptions add: --reason is required');
  if (action === 'import' && !file) throw new UsageError('exceptions import: give the JSON file to import');
  const expiresAt = flags.expires ? parseExpiry(flags.expires) : undefined;
  return withEngine(flags, async (session) => {
    if (action === 'list' || action === 'export') {
      const entries = await listAll(session);
      if (action === 'export' || flags.json)
        process.stdout.write(`${EJSON.stringify(entries, undefined, 2, { relaxed: true })}\n`);
      else
        process.stdout.write(entries.length ? `${entries.map(entryLine).join('\n')}\n` : 'no exceptions\n');
      return 0;
    }
    if (action === 'import') {
      let parsed: unknown;
      const text = (await readRegularFile(file!, 'exceptions import')).toString('utf8');
      try {
        parsed = EJSON.parse(text, { relaxed: true });
      } catch (error) {
        throw new UsageError(
          `exceptions import ${file}: not readable Extended JSON (${(error as Error).message})`,
        );
      }
      if (!Array.isArray(parsed))
        throw new UsageError(`exceptions import ${file}: expected a JSON array of entries`);
      // Every entry is checked before any is written: an import is all or nothing.
      const relations = new Map(session.config.relations.map((r) => [r.name, r]));
      const now = new Date();
      const entries: { relation: Relation; entry: ExceptionEntry }[] = parsed.map((raw, i) => {
        const where = `exceptions import ${file}: entry ${i + 1}`;
        const checked = importedEntry.safeParse(raw);
        if (!checked.success) {
          const issue = checked.error.issues[0];
          throw new UsageError(
            `${where}${issue.path.length ? `, ${issue.path.join('.')}` : ''}: ${issue.message}`,
          );
        }
        const entry = checked.data;
        const relation = relations.get(entry.relation);
        if (!relation)
          throw new UsageError(
            `${where}: unknown relation '${entry.relation}' (known: ${[...relations.keys()].join(', ')})`,
          );
        if (entry.expiresAt) assertFuture(entry.expiresAt, `${where}, expiresAt`, now);
        let valueKey: string;
        try {
          valueKey = exceptionKey(entry.kind, entry.value, relation.keyMatch);
        } catch (error) {
          throw new UsageError(`${where}: ${(error as Error).message}`);
        }
        return {
          relation,
          entry: {
            relation: entry.relation,
            kind: entry.kind,
            value: entry.value,
            valueKey,
            reason: entry.reason,
            createdBy: entry.createdBy ?? currentOperator(flags.operator),
            createdAt: entry.createdAt ?? now,
            ...(entry.expiresAt ? { expiresAt: entry.expiresAt } : {}),
          },
        };
      });
      // An exception binds to what exists, as `add` does: each value looked up in the forms it may stand for,
      // the form a child has stored; none at all refuses the whole import.
      for (const [i, item] of entries.entries()) {
        try {
          item.entry.value = await existingForm(
            (await session.pool.primaryDb(item.relation.child.source)).collection(
              item.relation.child.collection,
            ),
            item.relation,
            item.entry,
            session.config.maxTimeMS,
          );
        } catch (error) {
          if (!(error instanceof UsageError)) throw error;
          throw new UsageError(
            `exceptions import ${file}: entry ${i + 1}: ${error.message}; nothing was imported`,
          );
        }
        item.entry.valueKey = exceptionKey(item.entry.kind, item.entry.value, item.relation.keyMatch);
      }
      const tally = { added: 0, renewed: 0, exists: 0 };
      // One history record per relation for the whole import, not one per entry.
      const perRelation = new Map<Relation, typeof tally>();
      for (const { relation, entry } of entries) {
        const outcome = (await (await storeFor(session, relation)).add(entry, { history: false })).outcome;
        tally[outcome]++;
        const counts = perRelation.get(relation) ?? { added: 0, renewed: 0, exists: 0 };
        counts[outcome]++;
        perRelation.set(relation, counts);
      }
      for (const [relation, counts] of perRelation)
        await (await storeFor(session, relation)).recordRun(
          relation.name,
          counts,
          `imported from ${file}: ${counts.added} added, ${counts.renewed} renewed, ${counts.exists} already in force`,
          currentOperator(flags.operator),
        );
      process.stdout.write(
        `imported ${tally.added} exceptions, renewed ${tally.renewed} expired ones, ${tally.exists} already in force\n`,
      );
      return 0;
    }
    const relation = oneRelation(session, flags);
    const typed = target(flags);
    const { kind } = typed;
    // An exception binds to what exists: the form of the value a child has (a typed 24-hex is an ObjectId or a
    // string, digits a number or a string), said; none at all is refused with the forms tried.
    exceptionKey(kind, typed.value, relation.keyMatch); // a value that can never be a key is said first
    const value =
      action === 'add'
        ? await existingForm(
            (await session.pool.primaryDb(relation.child.source)).collection(relation.child.collection),
            relation,
            typed,
            session.config.maxTimeMS,
          )
        : typed.value;
    const valueKey = exceptionKey(kind, value, relation.keyMatch);
    const store = await storeFor(session, relation);
    if (action === 'add') {
      const added = await store.add({
        relation: relation.name,
        kind,
        value,
        valueKey,
        reason: flags.reason!.trim(),
        createdBy: currentOperator(flags.operator),
        createdAt: new Date(),
        ...(expiresAt ? { expiresAt } : {}),
      });
      process.stdout.write(
        `${addOutcomeText(added, kind, displayValue(value), relation.name)} (the child's ${kind === 'document' ? '_id' : relation.child.field} is ${describeForm(value)})\n`,
      );
      return 0;
    }
    const removed = await store.remove(
      { relation: relation.name, kind, valueKey, value },
      currentOperator(flags.operator),
    );
    if (!removed) throw new UsageError(`no ${kind} exception ${displayValue(value)} in ${relation.name}`);
    process.stdout.write(
      `removed ${kind} exception ${displayValue(value)} from ${relation.name}; its children count again from the next scan, their grace period starting then\n`,
    );
    return 0;
  });
}
