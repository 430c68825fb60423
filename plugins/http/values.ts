/**
 * Values as HTTP serves them. Rows are read in PostgreSQL's text format, so CSV shows exactly what
 * psql shows; JSON turns the types JSON has a word for into it (numbers that fit a double,
 * booleans, json) and keeps every other value as the server's text.
 */
import type { CustomTypesConfig } from 'pg';

const INT2 = 21;
const INT4 = 23;
const OID = 26;
const FLOAT4 = 700;
const FLOAT8 = 701;
const BOOL = 16;
const JSON_OID = 114;
const JSONB = 3802;

/** Every value as the text the server sent: the CSV and JSON encoders decide what it becomes. */
export const TEXT_TYPES: CustomTypesConfig = {
  getTypeParser: () => (value: string) => value,
} as unknown as CustomTypesConfig;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** A text value of a column of type `oid` as JSON. */
export function jsonValue(oid: number, text: string | null): JsonValue {
  if (text === null) return null;
  switch (oid) {
    case INT2:
    case INT4:
    case OID:
      return Number(text);
    case FLOAT4:
    case FLOAT8: {
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case BOOL:
      return text === 't';
    case JSON_OID:
    case JSONB:
      return JSON.parse(text) as JsonValue;
    default:
      return text;
  }
}

/**
 * One CSV field as psql's `--csv` writes it: quoted when it holds a separator, quote or line
 * break; NULL and the empty string both empty, as psql shows them.
 */
export function csvField(text: string | null): string {
  if (text === null) return '';
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(fields: readonly (string | null)[]): string {
  return `${fields.map(csvField).join(',')}\n`;
}
