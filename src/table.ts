/**
 * Tables as util-linux prints them through libsmartcols: column widths and
 * alignment, tree art, multi-line cells, truncation to the terminal, the raw
 * form and the JSON form. Generic over columns; src/ls.ts has lsns's.
 */

/** What a column is to the renderer. */
export interface TableColumn {
  name: string;
  /** libsmartcols width hint: a column narrower than its header uses the header's width, else at least this */
  whint: number;
  right: boolean;
  /** truncated to fit a terminal */
  trunc: boolean;
  /** one value per line, unless noWrap */
  wrap: boolean;
  json: 'number' | 'string';
}

/** One output row; in tree mode it may hang under another. */
export interface Line {
  cells: (string | null)[];
  parent: Line | null;
  children: Line[];
}

export function newLine(cells: (string | null)[], parent: Line | null = null): Line {
  const line: Line = { cells, parent, children: [] };
  parent?.children.push(line);
  return line;
}

interface Symbols {
  branch: string;
  vertical: string;
  right: string;
}

const UTF8_SYMBOLS: Symbols = { branch: '\u251c\u2500', vertical: '\u2502 ', right: '\u2514\u2500' };
const ASCII_SYMBOLS: Symbols = { branch: '|-', vertical: '| ', right: '`-' };

/** Whether the locale is UTF-8, as libsmartcols decides which tree symbols to draw. */
export function localeIsUtf8(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(locale);
}

export interface RenderOptions {
  json: boolean;
  raw: boolean;
  noHeadings: boolean;
  noTruncate: boolean;
  noWrap: boolean;
  /** draw the tree (needs its tree column to draw it in) */
  tree: boolean;
  /** the column the tree is drawn in (lsns: COMMAND for the process tree, NS, left-aligned, for owner and parent trees) */
  treeColumn: string;
  /** terminal width; null when stdout is not a terminal (nothing is truncated) */
  termWidth: number | null;
  utf8: boolean;
  /** the JSON form's one key (lsns: namespaces) */
  tableName?: string;
}

function isLastChild(line: Line): boolean {
  const siblings = line.parent?.children;
  return !siblings || siblings[siblings.length - 1] === line;
}

/** The tree art left of a row's data: its ancestors' verticals, then its own branch. */
function treeArt(line: Line, sym: Symbols): string {
  if (!line.parent) return '';
  return treePrefix(line.parent, sym) + (isLastChild(line) ? sym.right : sym.branch);
}

/** libsmartcols' tree_ascii_art_to_buffer: a vertical for each ancestor that has siblings below. */
function treePrefix(line: Line, sym: Symbols): string {
  if (!line.parent) return '';
  return treePrefix(line.parent, sym) + (isLastChild(line) ? '  ' : sym.vertical);
}

/** Rows in print order: a tree depth first, a list as added. */
function printOrder(lines: readonly Line[], tree: boolean): Line[] {
  if (!tree) return [...lines];
  const out: Line[] = [];
  const walk = (l: Line): void => {
    out.push(l);
    l.children.forEach(walk);
  };
  lines.filter((l) => !l.parent).forEach(walk);
  return out;
}

/** Which columns hold the tree. */
function treeColumns(columns: readonly TableColumn[], opts: Pick<RenderOptions, 'tree' | 'treeColumn'>): boolean[] {
  return columns.map((c) => opts.tree && c.name === opts.treeColumn);
}

/** Display width of one code point (wcwidth, roughly: combining marks 0, East Asian wide 2). */
function charWidth(cp: number): number {
  if (cp === 0x200b || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe20 && cp <= 0xfe2f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

function hexBytes(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
}

interface Encoded {
  /** the output, one piece per source character (a \xHH run for an escaped one) */
  pieces: string[];
  /** terminal cells of each piece */
  widths: number[];
  width: number;
}

const EMPTY: Encoded = { pieces: [], widths: [], width: 0 };

function text(e: Encoded): string {
  return e.pieces.join('');
}

/**
 * mbs_safe_encode: control characters (and `\x`, which would read as an
 * escape) become \xHH; outside a UTF-8 locale so does every non-ASCII byte.
 */
export function safeEncode(s: string, utf8: boolean): Encoded {
  const pieces: string[] = [];
  const widths: number[] = [];
  const chars = [...s];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    if ((ch === '\\' && chars[i + 1] === 'x') || cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) || (!utf8 && cp >= 0x80)) {
      const hex = hexBytes(ch);
      pieces.push(hex);
      widths.push(hex.length);
    } else {
      pieces.push(ch);
      widths.push(charWidth(cp));
    }
  }
  return { pieces, widths, width: widths.reduce((a, b) => a + b, 0) };
}

/** At most `width` cells of an encoded string. */
function truncate(enc: Encoded, width: number): Encoded {
  let used = 0;
  let n = 0;
  while (n < enc.pieces.length && used + enc.widths[n]! <= width) used += enc.widths[n++]!;
  return { pieces: enc.pieces.slice(0, n), widths: enc.widths.slice(0, n), width: used };
}

/** fputs_nonblank: raw output escapes blanks, backslashes and every byte that is not printable ASCII. */
export function rawEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b > 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** lsns's JSON: libsmartcols' layout (3-space indent, `},{`), numbers bare, empty cells null, children nested. */
export function renderJson(infos: readonly TableColumn[], lines: readonly Line[], tree: boolean, name = 'namespaces'): string {
  let out = `{\n   "${name}": [\n`;
  const quote = (s: string): string =>
    `"${s.replace(/[\\"\u0000-\u001f]/g, (c) => {
      switch (c) {
        case '"': return '\\"';
        case '\\': return '\\\\';
        case '\b': return '\\b';
        case '\t': return '\\t';
        case '\n': return '\\n';
        case '\f': return '\\f';
        case '\r': return '\\r';
        default: return `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
      }
    })}"`;
  const object = (line: Line, depth: number): string => {
    const pad = '   '.repeat(depth + 1);
    const values = infos.map((info, i) => {
      const v = line.cells[i];
      const text = v === null || v === undefined || v === '' ? 'null' : info.json === 'number' ? v : quote(v);
      return `${pad}"${info.name.toLowerCase()}": ${text}`;
    });
    if (tree && line.children.length > 0) {
      values.push(`${pad}"children": [\n${'   '.repeat(depth + 2)}${line.children.map((c) => object(c, depth + 2)).join(',')}\n${pad}]`);
    }
    return `{\n${values.join(',\n')}\n${'   '.repeat(depth)}}`;
  };
  const top = tree ? lines.filter((l) => !l.parent) : lines;
  if (top.length > 0) out += `      ${top.map((l) => object(l, 2)).join(',')}`;
  out += '\n   ]\n}\n';
  return out;
}

/** -r: one line per row, cells separated by a space, everything unusual escaped. */
export function renderRaw(columns: readonly TableColumn[], lines: readonly Line[], opts: RenderOptions): string {
  if (lines.length === 0) return '';
  const sym = opts.utf8 ? UTF8_SYMBOLS : ASCII_SYMBOLS;
  const isTree = treeColumns(columns, opts);
  const rows: string[] = [];
  if (!opts.noHeadings) rows.push(columns.map((c) => rawEncode(c.name)).join(' '));
  for (const line of printOrder(lines, opts.tree)) {
    rows.push(line.cells.map((c, i) => rawEncode((isTree[i] ? treeArt(line, sym) : '') + (c ?? ''))).join(' '));
  }
  return `${rows.join('\n')}\n`;
}

/** Column widths as libsmartcols counts them, narrowed to the terminal where columns may give way. */
function columnWidths(infos: readonly TableColumn[], cells: readonly Encoded[][][], trunc: readonly boolean[], opts: RenderOptions): { width: number; min: number }[] {
  const widths = infos.map((info, i) => {
    const min = Math.max(1, safeEncode(info.name, opts.utf8).width);
    let width = 0;
    for (const row of cells) for (const part of row[i]!) width = Math.max(width, part.width);
    if (width < min) width = min;
    else if (info.whint >= 1 && width < info.whint && min < info.whint) width = info.whint;
    return { width, min };
  });
  if (opts.termWidth === null) return widths;
  let total = widths.reduce((a, w) => a + w.width, 0) + widths.length - 1;
  // Only flagged columns give way, one cell at a time, never below their header.
  while (total > opts.termWidth) {
    let reduced = false;
    for (let i = 0; i < widths.length && total > opts.termWidth; i++) {
      const w = widths[i]!;
      if (!trunc[i] || w.width <= w.min) continue;
      w.width--;
      total--;
      reduced = true;
    }
    if (!reduced) break;
  }
  return widths;
}

/** The default table: libsmartcols' column widths, alignment, tree, multi-line NSFS and terminal truncation. */
export function renderTable(infos: readonly TableColumn[], lines: readonly Line[], opts: RenderOptions): string {
  if (lines.length === 0) return '';
  const sym = opts.utf8 ? UTF8_SYMBOLS : ASCII_SYMBOLS;
  const isTree = treeColumns(infos, opts);
  const ordered = printOrder(lines, opts.tree);
  const chunked = infos.map((info) => info.wrap && !opts.noWrap);
  // The tree column is never right-aligned (lsns drops SCOLS_FL_RIGHT from NS in an owner or parent tree).
  const right = infos.map((info, i) => info.right && !isTree[i]);
  const trunc = infos.map((info) => info.trunc && !opts.noTruncate);

  // Cells as printed: encoded, with tree art, split into lines for NSFS.
  const cells: Encoded[][][] = ordered.map((line) =>
    line.cells.map((c, i) => {
      const data = (isTree[i] ? treeArt(line, sym) : '') + (c ?? '');
      if (chunked[i]) return data.split('\n').map((part) => safeEncode(part, opts.utf8));
      return [safeEncode(data, opts.utf8)];
    }),
  );

  const widths = columnWidths(infos, cells, trunc, opts);

  const last = infos.length - 1;
  const out: string[] = [];
  const put = (i: number, enc: Encoded | null): string => {
    let width = widths[i]!.width;
    let e = enc ?? EMPTY;
    if (i === last && e.width < width && !right[i]) width = e.width;
    if (e.width > width && trunc[i]) e = truncate(e, width);
    let s = '';
    let len = e.width;
    if (e.pieces.length > 0) {
      if (right[i] && len < width) {
        s += ' '.repeat(width - len);
        len = width;
      }
      s += text(e);
    }
    if (i === last) return s;
    if (len < width) s += ' '.repeat(width - len);
    return `${s} `;
  };

  if (!opts.noHeadings) out.push(infos.map((info, i) => put(i, safeEncode(info.name, opts.utf8))).join(''));
  ordered.forEach((line, r) => {
    const row = cells[r]!;
    out.push(row.map((parts, i) => put(i, parts[0]!)).join(''));
    // Further NSFS paths go on extra lines, the other cells blank (the tree column keeps its verticals).
    const extra = Math.max(...row.map((parts) => parts.length)) - 1;
    for (let k = 1; k <= extra; k++) {
      out.push(
        row
          .map((parts, i) => {
            if (parts.length > 1) return put(i, parts[k] ?? null);
            if (isTree[i]) {
              const art = treePrefix(line, sym) + (line.children.length > 0 ? sym.vertical : '');
              return put(i, safeEncode(art, opts.utf8));
            }
            return put(i, null);
          })
          .join(''),
      );
    }
  });
  return `${out.join('\n')}\n`;
}


/** The table, raw or JSON form, as `opts` says; a tree only when its column is shown. */
export function render(columns: readonly TableColumn[], lines: readonly Line[], opts: RenderOptions): string {
  const tree = opts.tree && columns.some((c) => c.name === opts.treeColumn);
  const o = { ...opts, tree };
  if (opts.json) return renderJson(columns, lines, tree, opts.tableName);
  if (opts.raw) return renderRaw(columns, lines, o);
  return renderTable(columns, lines, o);
}
