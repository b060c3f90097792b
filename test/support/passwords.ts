/** Passwords an operator's URI may hold, each a way redaction has failed before: every output must hide them. */
export const AWKWARD_PASSWORDS = [
  'Leak Me99',
  'q"uote99',
  "it's-99",
  'back`tick9',
  'p@ss@word9',
  'co:lon:99',
  'sl/ash/99',
  'per%cent99',
  'nön-äscii9',
  'pa%40ss99',
];

/** The parts of a password long enough to recognise in output (split where URIs and messages split it). */
export function recognisableParts(password: string): string[] {
  return password.split(/[ @:/]/).filter((part) => part.length >= 4);
}
