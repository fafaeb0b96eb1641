// authentik versions are calendar versions: "2025.10.1" is October 2025.
export function calendarVersion(version: string): [number, number] | undefined {
  const m = /^(\d{4})\.(\d{1,2})(?:\.\d+)?(?:[-+].*)?$/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

// From 2025.10 authentik keeps everything in Postgres and has no Redis at all.
export function usesRedis(version: string): boolean {
  const v = calendarVersion(version);
  return v === undefined || v[0] < 2025 || (v[0] === 2025 && v[1] < 10);
}
