import { ConnectionString, redactConnectionString } from 'mongodb-connection-string-url';

/**
 * Every password and secret option seen in a configured URI, so they can be scrubbed from any text
 * even where it does not look like a URI (driver messages, stack-free error lines, logs).
 */
const knownSecrets = new Set<string>();
const SECRET_OPTIONS = ['tlsCertificateKeyFilePassword', 'authMechanismProperties', 'proxyPassword'];

/** A URI's password as written (up to the last `@`: it may hold spaces, quotes, `@`, `:` or `/`) and decoded. */
function passwordsIn(uri: string): string[] {
  const userinfo = /^mongodb(?:\+srv)?:\/\/(.*)@[^@]*$/s.exec(uri)?.[1];
  const colon = userinfo?.indexOf(':') ?? -1;
  if (!userinfo || colon < 0) return [];
  const raw = userinfo.slice(colon + 1);
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // A stray % is kept as typed.
  }
  return [raw, decoded];
}

export function rememberSecretsOf(uri: string): void {
  for (const secret of passwordsIn(uri)) if (secret.length >= 3) knownSecrets.add(secret);
  try {
    const parsed = new ConnectionString(uri, { looseValidation: true });
    for (const secret of [parsed.password, decodeURIComponent(parsed.password)])
      if (secret.length >= 3) knownSecrets.add(secret);
    for (const option of SECRET_OPTIONS) {
      const value = parsed.searchParams.get(option);
      if (value && value.length >= 3) knownSecrets.add(value);
    }
  } catch {
    // An unparsable URI is reported by its own validation; its text is still redacted below.
  }
}

/**
 * The userinfo of every URI in the text, up to the last `@` on its line that a host follows: a password
 * typed with spaces, quotes, `@`, `:` or `/` is still covered (a later `@` on the line only widens the cut).
 */
const USERINFO = /(mongodb(?:\+srv)?:\/\/)[^\n]*@(?=[A-Za-z0-9[\]._-]+(?::\d+)?(?:[,/?\s'"`)]|$))/g;

/** Redacts credentials from any text: URIs anywhere in it, and every remembered secret. */
export function redact(text: string): string {
  let out = text.replace(USERINFO, '$1****@').replace(/mongodb(?:\+srv)?:\/\/[^\s'"`]+/g, (uri) => {
    try {
      return redactConnectionString(uri, { replacementString: '****' });
    } catch {
      return uri.replace(/\/\/[^@/]*@/, '//****@');
    }
  });
  out = out.replace(/(mongodb(?:\+srv)?:\/\/)[^@\s/]*@/g, '$1****@');
  for (const secret of knownSecrets) out = out.split(secret).join('****');
  return out;
}

/** A URI as it may be shown: credentials replaced, hosts and database kept. */
export function redactUri(uri: string): string {
  return redact(uri);
}
