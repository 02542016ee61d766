/**
 * Subordinate ids for user 65534, for the whole run: the id-range tests map
 * them through newuidmap, and rootless podman maps them too. Set once before
 * any file runs, not per file, because files run in parallel and one file's
 * save-and-restore of /etc/subuid would change what another file's engine
 * sees halfway through. Only the line added here is removed afterwards.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const SUBIDS = { user: 'nobody', start: 300000, count: 65536 };
const FILES = ['/etc/subuid', '/etc/subgid'];

function hasRange(text: string): boolean {
  return text.split('\n').some((l) => l.startsWith(`${SUBIDS.user}:`) || l.startsWith('65534:'));
}

export default function setup(): () => void {
  if (process.getuid?.() !== 0) return () => {};
  const line = `${SUBIDS.user}:${SUBIDS.start}:${SUBIDS.count}\n`;
  const added: string[] = [];
  for (const f of FILES) {
    const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
    if (hasRange(text)) continue;
    writeFileSync(f, (text === '' || text.endsWith('\n') ? text : `${text}\n`) + line);
    added.push(f);
  }
  return () => {
    for (const f of added) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, 'utf8');
      writeFileSync(f, text.split(/(?<=\n)/).filter((l) => l !== line).join(''));
    }
  };
}
