import { z } from 'zod';
import { Secret } from './secret.js';

// A role variable that holds a secret: a vault value (Secret) or, for convenience, a plain
// string, which is then treated as secret too.
export const secret = () =>
  z
    .union([z.instanceof(Secret), z.string().min(1)], { error: 'expected a secret (a vault value or a string)' })
    .transform((v) => (typeof v === 'string' ? new Secret(v, 'a plain string in the inventory') : v));
