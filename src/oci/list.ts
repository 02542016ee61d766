/** list and state's outputs, as runc prints them (engines parse the JSON). */
import { userInfo } from 'node:os';
import { readFileSync } from 'node:fs';
import type { Globals } from './create';
import { stateJson } from './lifecycle';
import { listIds, ownerUid, readState } from './state';

function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (Number(f[2]) === uid && f[0]) return f[0];
    }
  } catch {
    // no passwd
  }
  return uid === userInfo().uid ? userInfo().username : `#${uid}`;
}

/** A table as Go's tabwriter pads it (minwidth 12, padding 3 in runc's list). */
export function table(rows: readonly (readonly string[])[], minWidth = 12, padding = 3): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(Math.max(minWidth, widths[c]! + padding)))).join('').trimEnd()).join('\n') + '\n';
}

export function list(g: Globals, format: string, quiet: boolean): string {
  const rows = [];
  for (const id of listIds(g.root)) {
    try {
      rows.push(stateJson(g, readState(g.root, id), userName(ownerUid(g.root, id))));
    } catch {
      // deleted meanwhile
    }
  }
  if (quiet) return rows.map((r) => `${r.id as string}\n`).join('');
  if (format === 'json') return `${rows.length ? JSON.stringify(rows) : 'null'}\n`;
  return table([['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...rows.map((r) => [r.id, r.pid, r.status, r.bundle, r.created, r.owner].map(String))]);
}
