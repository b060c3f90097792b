/**
 * Characters a terminal acts on rather than shows: C0 and C1 controls (ESC starts window-title, screen-clear
 * and clipboard sequences), DEL, and the bidirectional marks and overrides that reorder what follows.
 */
const ACTIVE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from data (a database, a manifest, a config, a file name) made safe to print: each character a terminal
 * would act on is shown as its `\uXXXX` escape, so what the operator sees is what is stored.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(ACTIVE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
