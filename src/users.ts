/** The user and group databases, read as getpwnam(3), lsns and newuidmap read them. */
import { readFileSync } from 'node:fs';

function readDb(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

function idIn(file: string, name: string): number | undefined {
  const f = readDb(file).find((e) => e[0] === name && /^\d+$/.test(e[2] ?? ''));
  return f ? Number(f[2]) : undefined;
}

export const lookupUser = (name: string): number | undefined => idIn('/etc/passwd', name);
export const lookupGroup = (name: string): number | undefined => idIn('/etc/group', name);

/** /etc/passwd text → uid → name (the first entry wins, as getpwuid finds it). */
export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2]!)) continue;
    const uid = Number(f[2]);
    if (!users.has(uid)) users.set(uid, f[0]!);
  }
  return users;
}

let passwd: Map<number, string> | undefined;

/** uid → user name, or the uid as text when /etc/passwd has no name for it (as lsns prints it). */
export function userName(uid: number): string {
  if (!passwd) {
    try {
      passwd = parsePasswd(readFileSync('/etc/passwd', 'utf8'));
    } catch {
      passwd = new Map();
    }
  }
  return passwd.get(uid) ?? String(uid);
}

/** The ranges of `uid` in /etc/subuid or /etc/subgid, which name it by login name or number, as newuidmap checks them. */
export function subordinateIds(kind: 'uid' | 'gid', uid: number): { start: number; count: number }[] {
  const names = new Set([String(uid), userName(uid)]);
  return readDb(`/etc/sub${kind}`)
    .filter((e) => names.has(e[0] ?? '') && /^\d+$/.test(e[1] ?? '') && /^\d+$/.test(e[2] ?? ''))
    .map((e) => ({ start: Number(e[1]), count: Number(e[2]) }));
}
