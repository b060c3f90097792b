/** The server-side error codes the sandbox answers with, named as mongod names them. */
export const ErrorCodes = {
  InternalError: 1,
  BadValue: 2,
  FailedToParse: 9,
  TypeMismatch: 14,
  IllegalOperation: 20,
  InvalidBSON: 22,
  NamespaceNotFound: 26,
  PathNotViable: 28,
  IndexNotFound: 27,
  CursorNotFound: 43,
  NamespaceExists: 48,
  DollarPrefixedFieldName: 52,
  InvalidIdField: 53,
  Unauthorized: 13,
  OperationFailed: 96,
  MaxTimeMSExpired: 50,
  CommandNotFound: 59,
  InvalidOptions: 72,
  NoMatchingDocument: 47,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  HostUnreachable: 6,
  NoReplicationEnabled: 76,
  TransactionTooOld: 225,
  NotImplemented: 238,
  SnapshotTooOld: 239,
  NoSuchTransaction: 251,
  WriteConflict: 112,
  TransactionCommitted: 256,
  OperationNotSupportedInTransaction: 263,
  DuplicateKey: 11000,
  NotWritablePrimary: 10107,
  Interrupted: 11601,
  NotPrimaryNoSecondaryOk: 13435,
  BSONObjectTooLarge: 10334,
  DistinctTooBig: 17217,
  Location40324: 40324,
} as const;

const codeNames = new Map<number, string>(Object.entries(ErrorCodes).map(([name, code]) => [code, name]));

export function codeNameFor(code: number): string {
  return codeNames.get(code) ?? `Location${code}`;
}

/** A command failure answered as `{ok: 0, errmsg, code, codeName}`, the shape every driver expects. */
export class CommandError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly extra: Record<string, unknown>;

  constructor(code: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.codeName = codeNameFor(code);
    this.extra = extra;
  }

  toReply(): Record<string, unknown> {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }
}
