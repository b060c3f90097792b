import { aggregate } from './aggregate.ts';
import type { CommandHandler } from './context.ts';
import { findCommands } from './find.ts';

/** The read commands, as the server dispatches them (and `explain` runs them). */
export const readCommands: Record<string, CommandHandler> = { ...findCommands, aggregate };
