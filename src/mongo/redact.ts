import { ConnectionString, redactConnectionString } from 'mongodb-connection-string-url';

/**
 * Every password and secret option seen in a configured URI, so they can be scrubbed from any text
 * even where it does not look like a URI (driver messages, stack-free error lines, logs).
 */
const knownSecrets = new Set<string>();
const SECRET_OPTIONS = ['tlsCertificateKeyFilePassword', 'authMechanismProperties', 'proxyPassword'];

export function rememberSecretsOf(uri: string): void {
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

/** Redacts credentials from any text: URIs anywhere in it, and every remembered secret. */
export function redact(text: string): string {
  let out = text.replace(/mongodb(?:\+srv)?:\/\/[^\s'"`]+/g, (uri) => {
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
