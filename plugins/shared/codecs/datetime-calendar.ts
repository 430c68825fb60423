/**
 * Calendar arithmetic and the printed pieces of dates, times and timestamps, for the datetime
 * codecs (codec-datetime.ts): Julian days ported from PostgreSQL's date2j/j2date (proleptic
 * Gregorian), microsecond counts since 2000-01-01, and UTC offsets as PostgreSQL and JavaScript
 * print them.
 */

export const POSTGRES_EPOCH_JDATE = 2451545; // Julian day of 2000-01-01
export const UNIX_EPOCH_MS_FROM_2000 = 946684800000; // 2000-01-01 in Unix milliseconds
export const USECS_PER_DAY = 86400000000n;
export const DATE_MIN = -POSTGRES_EPOCH_JDATE; // Julian day 0, 4714-11-24 BC
export const DATE_END = 2147483494 - POSTGRES_EPOCH_JDATE; // 5874898-01-01, exclusive
export const TS_MIN = -211813488000000000n; // 4714-11-24 00:00:00 BC
export const TS_END = 9223371331200000000n; // 294277-01-01 00:00:00, exclusive
export const INT32_MAX = 2147483647;
export const INT32_MIN = -2147483648;
export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);

// --- calendar arithmetic, ported from PostgreSQL's date2j/j2date (proleptic Gregorian)

/** Julian day number of an astronomical year (0 = 1 BC), month and day. */
export function date2j(year: number, month: number, day: number): number {
  let y = year;
  let m = month;
  if (m > 2) {
    m += 1;
    y += 4800;
  } else {
    m += 13;
    y += 4799;
  }
  const century = Math.trunc(y / 100);
  let julian = y * 365 - 32167;
  julian += Math.trunc(y / 4) - century + Math.trunc(century / 4);
  julian += Math.trunc((7834 * m) / 256) + day;
  return julian;
}

export function j2date(jd: number): { year: number; month: number; day: number } {
  let julian = jd + 32044;
  let quad = Math.floor(julian / 146097);
  const extra = (julian - quad * 146097) * 4 + 3;
  julian += 60 + quad * 3 + Math.floor(extra / 146097);
  quad = Math.floor(julian / 1461);
  julian -= quad * 1461;
  let y = Math.floor((julian * 4) / 1461);
  julian = (y !== 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123;
  y += quad * 4;
  const q = Math.floor((julian * 2141) / 65536);
  return { year: y - 4800, day: julian - Math.floor((7834 * q) / 256), month: ((q + 10) % 12) + 1 };
}

export function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

export const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

// --- the pieces of a date or timestamp

/** 'YYYY-MM-DD' and whether it is BC (the ' BC' suffix goes at the very end). */
export function formatDate(days: number): { text: string; bc: boolean } {
  const { year, month, day } = j2date(days + POSTGRES_EPOCH_JDATE);
  const bc = year <= 0;
  return { text: `${pad(bc ? 1 - year : year, 4)}-${pad(month, 2)}-${pad(day, 2)}`, bc };
}

/** HH:MM:SS and the six-digit fraction of a time of day in microseconds. */
export function splitTime(us: number): { hms: string; frac: string } {
  const secs = Math.floor(us / 1000000);
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  return { hms: `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}`, frac: pad(us % 1000000, 6) };
}

/** The fraction as PostgreSQL prints it: dropped when zero, else without trailing zeros. */
export function pgFraction(frac6: string): string {
  const t = frac6.replace(/0+$/, '');
  return t ? `.${t}` : '';
}

/** Days and microseconds into the day of a timestamp (floor division). */
export function splitTimestamp(us: bigint): { days: number; tod: number } {
  let days = us / USECS_PER_DAY;
  let tod = us % USECS_PER_DAY;
  if (tod < 0n) {
    tod += USECS_PER_DAY;
    days -= 1n;
  }
  return { days: Number(days), tod: Number(tod) };
}

/** A timestamp as JavaScript ('T', six fraction digits) or PostgreSQL text (' ', trimmed fraction). */
export function formatTimestamp(us: bigint, style: 'js' | 'pg', zone = ''): string {
  const { days, tod } = splitTimestamp(us);
  const date = formatDate(days);
  const { hms, frac } = splitTime(tod);
  const time = style === 'js' ? `T${hms}.${frac}` : ` ${hms}${pgFraction(frac)}`;
  return `${date.text}${time}${zone}${date.bc ? ' BC' : ''}`;
}

/** A UTC offset in seconds east as PostgreSQL prints it: +00, +05:30, -03:30, +05:53:28. */
export function pgZone(offset: number): string {
  const a = Math.abs(offset);
  const h = Math.floor(a / 3600);
  const m = Math.floor((a % 3600) / 60);
  const s = a % 60;
  const sign = offset >= 0 ? '+' : '-';
  if (s !== 0) return `${sign}${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}`;
  if (m !== 0) return `${sign}${pad(h, 2)}:${pad(m, 2)}`;
  return `${sign}${pad(h, 2)}`;
}

/** The same offset in the JavaScript form: Z, +05:30, -03:30, +05:53:28. */
export function jsZone(offset: number): string {
  if (offset === 0) return 'Z';
  const z = pgZone(offset);
  return z.length === 3 ? `${z}:00` : z;
}
