// Short forms of text and numbers for messages.

// The first line of a text (leading blank lines skipped), cut to `max` characters with "..."
// when longer: how a command or a value is named in a message.
export function firstLine(text: string, max = 80): string {
  const line = text.trimStart().split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

// A size as people read it: 512 B, 40.1 KiB, 1.2 MiB.
export function humanBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

// Text from a host made safe to print on a terminal: control characters other than a line
// break and a tab (escape sequences can retitle the window, move the cursor, write the
// clipboard) are shown as \xNN.
export function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
