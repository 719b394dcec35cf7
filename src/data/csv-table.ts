// CSV text as a table: records split with RFC 4180 quoting, a header found (or columns named by
// position), the field separator given or detected. Real files have quirks: metadata lines above
// the header (scikit-learn's data files start with `506,13,,,...`), `;` or tab separators, quoted
// names, no header at all. readCsvTable reads each one when told how (skipRows, header,
// delimiter), detects the separator when only one reading is consistent, and otherwise refuses
// with a message naming the command-line option that reads the file (--skip-rows, --no-header,
// --delimiter; the options of the same names here). Errors name the file, the line and the column.
import { DataError } from './dataset.ts';

/** How to read a CSV file's layout (shared by training data and rows to predict). */
export interface CsvReadOptions {
  /** Field separator; by default detected among ',', ';' and tab (see detectDelimiter). */
  delimiter?: string;
  /** Lines to skip before the header (or before the first data row without a header), e.g. a metadata line. */
  skipRows?: number;
  /** Whether the first row read is a header (default true); without one, columns are named 1, 2, ... by position. */
  header?: boolean;
}

/** One parsed CSV record and the (1-based) line it starts on. */
export interface CsvRow {
  line: number;
  cells: string[];
}

/**
 * Split CSV text into records: RFC 4180 quoting (`"a, b"`, `""` for a quote, newlines inside
 * quotes), `\n` or `\r\n` line ends, a leading byte-order mark ignored, blank lines skipped.
 */
export function parseCsvRows(text: string, fileLabel: string, delimiter = ',', firstLine = 1): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = firstLine;
  let cells: string[] = [];
  let rowLine = firstLine;
  let anyQuoted = false;
  const endRow = () => {
    const blank = !anyQuoted && cells.length === 1 && cells[0].trim() === '';
    if (!blank) rows.push({ line: rowLine, cells });
    cells = [];
    anyQuoted = false;
  };
  while (i <= text.length) {
    // Start of a field.
    if (cells.length === 0) rowLine = line;
    let field = '';
    let j = i;
    while (j < text.length && (text[j] === ' ' || text[j] === '\t') && text[j] !== delimiter) j++;
    if (text[j] === '"') {
      anyQuoted = true;
      const openLine = line;
      j++;
      for (;;) {
        if (j >= text.length) throw new DataError(fileLabel, 'quoted field is never closed', { line: openLine });
        const c = text[j];
        if (c === '"') {
          if (text[j + 1] === '"') {
            field += '"';
            j += 2;
            continue;
          }
          j++;
          break;
        }
        if (c === '\n') line++;
        field += c;
        j++;
      }
      while (j < text.length && (text[j] === ' ' || text[j] === '\t' || text[j] === '\r') && text[j] !== delimiter && !(text[j] === '\r' && text[j + 1] === '\n')) j++;
      if (j < text.length && text[j] !== delimiter && text[j] !== '\n' && !(text[j] === '\r' && text[j + 1] === '\n')) {
        throw new DataError(fileLabel, `unexpected character '${text[j]}' after a closing quote`, { line });
      }
    } else {
      j = i;
      while (j < text.length && text[j] !== delimiter && text[j] !== '\n') j++;
      field = text.slice(i, j);
      if (field.endsWith('\r') && text[j] !== delimiter) field = field.slice(0, -1);
    }
    cells.push(field);
    if (j >= text.length) {
      endRow();
      break;
    }
    if (text[j] === delimiter) {
      i = j + 1;
      continue;
    }
    // End of a record: '\n' or '\r\n'.
    j += text[j] === '\r' ? 2 : 1;
    endRow();
    line++;
    i = j;
    if (i >= text.length) break;
  }
  return rows;
}

/** One CSV record: cells quoted (RFC 4180) when they hold the delimiter, a quote, a line end or outer spaces. */
export function formatCsvRow(cells: string[], delimiter = ','): string {
  return cells.map((c) => (c.includes(delimiter) || /["\r\n]/.test(c) || c !== c.trim() ? `"${c.replaceAll('"', '""')}"` : c)).join(delimiter);
}

const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

/** A cell as a number, or null if it is not one. `NaN`, `inf`, `-Infinity` parse (as non-finite). */
export function parseNumber(cell: string): number | null {
  const s = cell.trim();
  if (s === '') return null;
  const v = Number(s);
  if (!Number.isNaN(v)) return v;
  if (NON_FINITE.test(s)) return /nan/i.test(s) ? NaN : s.startsWith('-') ? -Infinity : Infinity;
  return null;
}

/** A CSV file's header and data records, as read with its layout options. */
export interface CsvTable {
  /** Column names (trimmed), or '1', '2', ... without a header. */
  header: string[];
  /** The (1-based) line of the header, or null without one. */
  headerLine: number | null;
  /** Data records, each with its line. */
  rows: CsvRow[];
  /** The separator used (given or detected). */
  delimiter: string;
}

const DELIMITERS = [',', ';', '\t'];
const SHOWN_DELIMITER: Record<string, string> = { ',': "','", ';': "';'", '\t': 'tab' };
const showDelimiter = (d: string) => SHOWN_DELIMITER[d] ?? `'${d}'`;
const DETECT_LINES = 20;

/** The text after its first `lines` lines (a byte-order mark dropped first). */
function skipLines(text: string, lines: number, fileLabel: string): string {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let k = 0; k < lines; k++) {
    const nl = text.indexOf('\n', i);
    if (nl < 0) {
      const has = k + (i < text.length ? 1 : 0);
      throw new DataError(fileLabel, `skipRows ${lines} skips the whole file (it has ${has} line${has === 1 ? '' : 's'})`);
    }
    i = nl + 1;
  }
  return text.slice(i);
}

/**
 * The field separator of CSV text: of ',', ';' and tab, the one that splits each of the first
 * lines into the same number (at least 2) of fields. When several do, guessing would be unsafe
 * and it is refused, naming --delimiter; when none does, ',' (the row-length check then names the
 * line at fault).
 */
export function detectDelimiter(text: string, fileLabel: string, firstLine = 1): string {
  let end = 0;
  for (let k = 0; k < DETECT_LINES && end >= 0; k++) end = text.indexOf('\n', end + (k ? 1 : 0));
  const sample = end < 0 ? text : text.slice(0, end);
  const consistent = DELIMITERS.filter((d) => {
    let rows: CsvRow[];
    try {
      rows = parseCsvRows(sample, fileLabel, d, firstLine);
    } catch {
      return false;
    }
    return rows.length > 0 && rows[0].cells.length >= 2 && rows.every((r) => r.cells.length === rows[0].cells.length);
  });
  if (consistent.length === 1) return consistent[0];
  if (consistent.length > 1) {
    const which = consistent.map(showDelimiter).join(' and ');
    throw new DataError(fileLabel, `the field separator is ambiguous: ${which} each split every one of the first lines into equal rows; pass --delimiter (e.g. --delimiter '${consistent[1] === '\t' ? '\\t' : consistent[1]}')`, {
      line: firstLine,
    });
  }
  return ',';
}

const isNumberLike = (s: string) => s.trim() !== '' && parseNumber(s) !== null;

/** A record that could be a header: every cell a non-empty name that is not a number. */
const headerLike = (r: CsvRow) => r.cells.length >= 2 && r.cells.every((c) => c.trim() !== '' && !isNumberLike(c));

/** Short form of a record for messages: its cells joined, cut at 60 characters. */
function quoteRecord(r: CsvRow, delimiter: string): string {
  const s = r.cells.join(delimiter === '\t' ? '\\t' : delimiter);
  return `"${s.length > 60 ? `${s.slice(0, 57)}...` : s}"`;
}

/**
 * What to pass when the first record read as a header is not one: --skip-rows to a later record
 * that looks like a header; or, when the records after it are all numbers, --no-header (the
 * first record is data when it is all numbers too, a metadata line to skip when it holds some).
 * '' when nothing fits.
 */
function headerAdvice(records: CsvRow[]): string {
  const later = records.slice(1, 6).find(headerLike);
  if (later) return `the header seems to be on line ${later.line}: pass --skip-rows ${later.line - 1}`;
  const data = records.slice(1, 6);
  if (!data.length || !data.every((r) => r.cells.every(isNumberLike))) return '';
  const first = records[0].cells;
  if (first.every(isNumberLike)) return 'the file seems to have no header: pass --no-header (columns are then named 1, 2, ...)';
  if (first.some(isNumberLike)) {
    return `line ${records[0].line} looks like a metadata line above data without a header: pass --skip-rows ${records[0].line} --no-header (columns are then named 1, 2, ...)`;
  }
  return '';
}

/**
 * Read CSV text into a header and data records, with its layout: lines skipped, a header or
 * not, the separator given or detected. A header with empty names is refused with the option
 * that would read the file (a metadata line above the header: --skip-rows).
 */
export function readCsvTable(text: string, fileLabel: string, opts: CsvReadOptions = {}): CsvTable {
  const skip = opts.skipRows ?? 0;
  if (!(Number.isInteger(skip) && skip >= 0)) throw new Error(`${fileLabel}: skipRows must be a non-negative integer, got ${skip}`);
  const d = opts.delimiter;
  if (d !== undefined && (d.length !== 1 || d === '"' || d === '\n' || d === '\r')) {
    throw new Error(`${fileLabel}: the delimiter must be one character other than a quote or a line end, got ${JSON.stringify(d)}`);
  }
  const body = skipLines(text, skip, fileLabel);
  const delimiter = d ?? detectDelimiter(body, fileLabel, skip + 1);
  const records = parseCsvRows(body, fileLabel, delimiter, skip + 1);
  if (records.length === 0) throw new DataError(fileLabel, skip ? `no rows after the ${skip} skipped lines` : 'file has no rows');
  if (opts.header === false) {
    const header = records[0].cells.map((_, c) => String(c + 1));
    return { header, headerLine: null, rows: records, delimiter };
  }
  const first = records[0];
  const header = first.cells.map((s) => s.trim());
  const empty = header.map((h, c) => (h === '' ? c + 1 : 0)).filter((c) => c > 0);
  if (empty.length) {
    const what = empty.length === 1 ? `column ${empty[0]} has no name` : `${empty.length} of ${header.length} columns have no name`;
    const advice = headerAdvice(records) || 'name every column in the header (a saved index column can then be skipped with --ignore-columns), pass --skip-rows N if the header is further down, or --no-header if there is none';
    throw new DataError(fileLabel, `${what} in the header ${quoteRecord(first, delimiter)}; ${advice}`, { line: first.line });
  }
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw new DataError(fileLabel, `column name "${h}" appears twice in the header`, { line: first.line });
    seen.add(h);
  }
  return { header, headerLine: first.line, rows: records.slice(1), delimiter };
}

/** Advice on reading a table whose columns were not the ones expected ('' when there is none to give). */
export function layoutAdvice(table: CsvTable): string {
  if (table.headerLine === null) return '';
  const advice = headerAdvice([{ line: table.headerLine, cells: table.header }, ...table.rows.slice(0, 5)]);
  if (advice) return advice;
  return table.header.length === 1 ? 'the header has one column: if fields are separated by something else, pass --delimiter' : '';
}

/** A column not in the header: the error lists the columns there are, and says what else to try. */
export function missingColumnError(fileLabel: string, table: CsvTable, what: string): DataError {
  const advice = layoutAdvice(table);
  return new DataError(fileLabel, `${what} not found; the columns are: ${table.header.join(', ')}${advice ? `; ${advice}` : ''}`, table.headerLine !== null ? { line: table.headerLine } : {});
}

/** A cell as a number, or the error naming its line and column (non-numeric, empty, or non-finite when checked). */
export function numericCell(cell: string, fileLabel: string, at: { line: number; column: string }, checkFinite: boolean): number {
  const v = parseNumber(cell);
  if (v === null) {
    const s = cell.trim();
    const what = s === '' ? 'empty cell (missing values are not supported)' : /^[+-]?\d+,\d+$/.test(s) ? `"${cell}" is not a number (a decimal comma? use a decimal point)` : `"${cell}" is not a number`;
    throw new DataError(fileLabel, what, at);
  }
  if (checkFinite && !Number.isFinite(v)) throw new DataError(fileLabel, `value "${cell.trim()}" is not finite`, at);
  return v;
}
