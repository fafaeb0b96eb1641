import { z } from 'zod';
import { isValidName, nameRule, type NameKind } from './names.js';
import { Secret } from './secret.js';

// A role variable that holds a secret: a vault value (Secret) or, for convenience, a plain
// string, which is then treated as secret too.
export const secret = () =>
  z
    .union([z.instanceof(Secret), z.string().min(1)], { error: 'expected a secret (a vault value or a string)' })
    .transform((v) => (typeof v === 'string' ? new Secret(v, 'a plain string in the inventory') : v));

// A role variable that names a package, unit, account or sysctl key: checked with the rest of
// the variables, so a bad name in the inventory stops the run (exit 5) before any host is
// touched, naming the file and the key.
export const name = (kind: NameKind) => z.string().refine((v) => isValidName(kind, v), `expected ${nameRule(kind)}`);

// A map keyed by such names (e.g. sysctl key -> value): a bad key is named in the error.
export const nameMap = <V extends z.ZodType>(kind: NameKind, value: V) =>
  z.record(z.string(), value).superRefine((map, ctx) => {
    for (const key of Object.keys(map)) {
      if (!isValidName(kind, key)) ctx.addIssue({ code: 'custom', path: [key], message: `the key is not ${nameRule(kind)}` });
    }
  });

// A vaulted number or boolean is a Secret holding its typed value. A field that takes the Secret
// as it is (secret(), also refined or optional) keeps it; any other field, such as a plain
// z.number() or z.boolean(), gets the typed value (a number stays registered, so output still
// masks it). Decided by trying the field, not by reading zod's internals. Vaulted strings stay
// Secrets everywhere: a role that wants one declares it with secret().
export function typedSecretFor(field: z.ZodType | undefined, value: unknown): unknown {
  if (!(value instanceof Secret) || typeof value.revealTyped() === 'string') return value;
  return !field || field.safeParse(value).success ? value : value.revealTyped();
}

// typedSecretFor over a role's variables, before they are validated against its schema.
export function typedSecretsFor(schema: z.ZodObject<z.ZodRawShape>, vars: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(vars).map(([key, value]) => [key, typedSecretFor(schema.shape[key] as z.ZodType | undefined, value)]));
}
