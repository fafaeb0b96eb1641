// The two Python readers Ansible's INI inventory runs every line through: shlex.split (host
// lines) and ast.literal_eval (variable values). Their quirks decide what a user's inventory
// means (a `#` inside a word starts a comment, `0644` is no number, `yes` is no boolean), so
// they are ported here rule for rule; no JavaScript library reads either the way Python does.

// shlex.split(line, comments=True) in POSIX mode. Throws Error with Python's message.
export function shlexSplit(line: string): string[] {
  const tokens: string[] = [];
  let token = '';
  // A word has begun, even an empty one (`''` is a token).
  let inWord = false;
  let i = 0;
  const end = () => {
    if (inWord) tokens.push(token);
    token = '';
    inWord = false;
  };
  while (i < line.length) {
    const c = line[i++]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') end();
    else if (c === '#') break;
    else if (c === "'" || c === '"') {
      inWord = true;
      for (;;) {
        if (i >= line.length) throw new Error('No closing quotation');
        const d = line[i++]!;
        if (d === c) break;
        // Inside double quotes a backslash escapes only `"` and itself; single quotes escape nothing.
        if (c === '"' && d === '\\') {
          if (i >= line.length) throw new Error('No escaped character');
          const e = line[i++]!;
          token += e === '"' || e === '\\' ? e : `\\${e}`;
        } else token += d;
      }
    } else if (c === '\\') {
      if (i >= line.length) throw new Error('No escaped character');
      token += line[i++];
      inWord = true;
    } else {
      token += c;
      inWord = true;
    }
  }
  end();
  return tokens;
}

// Why a value cannot be used although Python reads it (Ansible then fails to print it too).
export class UnusableLiteral extends Error {}

const NOT_LITERAL = Symbol('not a literal');
type Result = unknown;

interface Token {
  kind: 'num' | 'str' | 'bytes' | 'name' | 'op' | 'imag' | 'end';
  text: string;
  value?: unknown;
}

const DEC = '[0-9](?:_?[0-9])*';
const NUMBER = new RegExp(
  `^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:${DEC}\\.(?:${DEC})?|\\.${DEC}|${DEC})(?:[eE][-+]?${DEC})?[jJ]?)`,
);
const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\n': '' };

function unescape(body: string, bytes: boolean): string {
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|[0-7]{1,3}|[\s\S])/g, (whole, e: string) => {
    if (e in SIMPLE_ESCAPES) return SIMPLE_ESCAPES[e]!;
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (bytes) return whole;
    if (e[0] === 'u' || e[0] === 'U') {
      const code = parseInt(e.slice(1), 16);
      // Python refuses \U beyond the last code point; Ansible then keeps the text as written.
      if (code > 0x10ffff) throw new UnusableLiteral(`the escape ${whole} (beyond the last Unicode code point)`);
      return String.fromCodePoint(code);
    }
    if (e[0] === 'N') throw new UnusableLiteral(`the escape ${whole} (write the character itself)`);
    // Python keeps an unknown escape as written (with a warning).
    return whole;
  });
}

function lex(src: string): Token[] | typeof NOT_LITERAL {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i);
    const space = /^[ \t\f\r\n]+/.exec(rest);
    if (space) {
      i += space[0].length;
      continue;
    }
    if (rest[0] === '#') break;
    const str = /^([rRbBuUfF]{0,2})('''|"""|'|")/.exec(rest);
    if (str && /^(?:[rR]?[bB]?|[bB][rR]|[uU]|[fF][rR]?|[rR][fF])$/.test(str[1]!)) {
      const prefix = str[1]!.toLowerCase();
      const quote = str[2]!;
      let j = str[0].length;
      let body = '';
      for (;;) {
        if (j >= rest.length) return NOT_LITERAL;
        if (rest.startsWith(quote, j)) break;
        if (quote.length === 1 && rest[j] === '\n') return NOT_LITERAL;
        if (rest[j] === '\\' && j + 1 < rest.length) {
          body += rest.slice(j, j + 2);
          j += 2;
        } else body += rest[j++];
      }
      i += j + quote.length;
      // An f-string is an expression, not a literal.
      if (prefix.includes('f')) return NOT_LITERAL;
      const bytes = prefix.includes('b');
      // eslint-disable-next-line no-control-regex
      if (bytes && /[^\x00-\x7f]/.test(body)) return NOT_LITERAL;
      const text = prefix.includes('r') ? body : unescape(body, bytes);
      out.push({ kind: bytes ? 'bytes' : 'str', text: '', value: text });
      continue;
    }
    const num = NUMBER.exec(rest);
    if (num && /^[0-9.]/.test(rest)) {
      const text = num[0];
      i += text.length;
      // Python refuses a number glued to a name ("1abc") and a decimal with leading zeros.
      if (/^[\p{L}\p{N}_]/u.test(src.slice(i))) return NOT_LITERAL;
      if (/[jJ]$/.test(text)) {
        out.push({ kind: 'imag', text });
        continue;
      }
      const clean = text.replace(/_/g, '');
      let value: number;
      const radix = { x: 16, o: 8, b: 2 }[clean[1]?.toLowerCase() ?? ''];
      if (radix || /^[0-9]+$/.test(clean)) {
        if (!radix && /^0+[1-9]/.test(clean)) return NOT_LITERAL;
        value = radix ? parseInt(clean.slice(2), radix) : Number(clean);
        if (!Number.isSafeInteger(value)) throw new UnusableLiteral(`the integer ${text} is too large (quote it to keep it as text)`);
      } else {
        value = Number(clean);
        if (!Number.isFinite(value)) throw new UnusableLiteral(`the number ${text} is out of range (quote it to keep it as text)`);
      }
      out.push({ kind: 'num', text, value });
      continue;
    }
    const name = /^[\p{L}_][\p{L}\p{N}_]*/u.exec(rest);
    if (name) {
      out.push({ kind: 'name', text: name[0] });
      i += name[0].length;
      continue;
    }
    const op = /^(?:\.\.\.|\*\*|\/\/|[-+*/%@&|^~<>=!.,:;()[\]{}])/.exec(rest);
    if (!op) return NOT_LITERAL;
    out.push({ kind: 'op', text: op[0] });
    i += op[0].length;
  }
  out.push({ kind: 'end', text: '' });
  return out;
}

// ast.literal_eval(text), with Python's values turned into JSON's: a tuple is a list, bytes are
// text (as Ansible's to_text makes them). What Python would not read as a literal gives
// `undefined` (Ansible then keeps the text); a literal JSON cannot hold (a set, a complex
// number, `...`) throws UnusableLiteral, as ansible-inventory itself fails on it.
export function literalEval(text: string): Result {
  const tokens = lex(text);
  if (tokens === NOT_LITERAL) return undefined;
  let pos = 0;
  const peek = () => tokens[pos]!;
  const isOp = (t: Token, op: string) => t.kind === 'op' && t.text === op;
  const fail = (): never => {
    throw NOT_LITERAL;
  };
  const expect = (op: string) => (isOp(peek(), op) ? pos++ : fail());

  const sequence = (close: string, item: () => Result): { items: Result[]; comma: boolean } => {
    const items: Result[] = [];
    let comma = false;
    while (!isOp(peek(), close)) {
      items.push(item());
      if (isOp(peek(), ',')) {
        pos++;
        comma = true;
      } else break;
    }
    expect(close);
    return { items, comma };
  };

  const atom = (): Result => {
    const t = tokens[pos++]!;
    if (t.kind === 'str' || t.kind === 'bytes') {
      let value = t.value as string;
      // Adjacent string literals are one ("a" "b"); text and bytes do not mix.
      while (peek().kind === 'str' || peek().kind === 'bytes') {
        if (peek().kind !== t.kind) fail();
        value += tokens[pos++]!.value as string;
      }
      if (t.kind === 'bytes') {
        try {
          return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(value, (c) => c.charCodeAt(0)));
        } catch {
          throw new UnusableLiteral('the bytes are not UTF-8 text');
        }
      }
      return value;
    }
    if (t.kind === 'num') return t.value;
    if (t.kind === 'imag') throw new UnusableLiteral(`the complex number ${t.text}`);
    if (t.kind === 'name') {
      if (t.text === 'True') return true;
      if (t.text === 'False') return false;
      if (t.text === 'None') return null;
      if (t.text === 'set' && isOp(peek(), '(') && isOp(tokens[pos + 1]!, ')')) throw new UnusableLiteral('a set');
      return fail();
    }
    if (isOp(t, '...')) throw new UnusableLiteral('the Ellipsis `...`');
    if (isOp(t, '-') || isOp(t, '+')) {
      // A sign applies to a number written right there, nothing else (not --5, not -True).
      const n = peek();
      if (n.kind === 'imag') throw new UnusableLiteral(`the complex number ${n.text}`);
      if (n.kind !== 'num') fail();
      pos++;
      return t.text === '-' ? -(n.value as number) : n.value;
    }
    if (isOp(t, '(')) {
      if (isOp(peek(), ')')) {
        pos++;
        return [];
      }
      const first = value();
      if (isOp(peek(), ')')) {
        pos++;
        return first;
      }
      expect(',');
      return [first, ...sequence(')', value).items];
    }
    if (isOp(t, '[')) return sequence(']', value).items;
    if (isOp(t, '{')) {
      if (isOp(peek(), '}')) {
        pos++;
        return {};
      }
      const key = value();
      if (!isOp(peek(), ':')) {
        if (isOp(peek(), ',')) pos++;
        else if (!isOp(peek(), '}')) fail();
        sequence('}', value);
        throw new UnusableLiteral('a set');
      }
      const out: Record<string, unknown> = {};
      const entry = (k: Result): void => {
        expect(':');
        const v = value();
        if (typeof k === 'string' || (typeof k === 'number' && Number.isInteger(k))) out[String(k)] = v;
        else throw new UnusableLiteral('a dict key that is not a string or an integer');
      };
      entry(key);
      while (isOp(peek(), ',')) {
        pos++;
        if (isOp(peek(), '}')) break;
        entry(value());
      }
      expect('}');
      return out;
    }
    return fail();
  };

  // A binary + or - is a literal only as `real ± imaginary`, which JSON cannot hold.
  const value = (): Result => {
    const v = atom();
    if ((isOp(peek(), '+') || isOp(peek(), '-')) && tokens[pos + 1]?.kind === 'imag') throw new UnusableLiteral('a complex number');
    return v;
  };

  try {
    const v = value();
    return peek().kind === 'end' ? v : undefined;
  } catch (error) {
    if (error === NOT_LITERAL) return undefined;
    throw error;
  }
}
