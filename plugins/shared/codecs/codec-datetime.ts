/**
 * date, time, timestamp and timestamptz, as fixed-format strings that keep every microsecond.
 *
 * Binary formats (integer datetimes, big-endian):
 *   date         int32 days since 2000-01-01; INT32_MAX is 'infinity', INT32_MIN '-infinity'
 *   time         int64 microseconds since midnight, 0 .. 86400000000 (24:00:00 is valid)
 *   timestamp    int64 microseconds since 2000-01-01 00:00:00 (wall clock);
 *                INT64_MAX is 'infinity', INT64_MIN '-infinity'
 *   timestamptz  the same count from 2000-01-01 00:00:00 UTC
 *
 * Text formats, DateStyle ISO (what every driver sets):
 *   date         2024-10-27, 0044-03-15 BC, infinity, -infinity
 *   time         10:00:00, 10:00:00.5 (trailing zeros of the fraction dropped)
 *   timestamp    2024-10-27 10:00:00.123456, 0044-03-15 10:00:00 BC
 *   timestamptz  the same in the session TimeZone followed by its UTC offset: +00, +05:30,
 *                -03:30, +05:53:28 (local mean time of old dates), then ' BC' if BC
 * Years have at least four digits; BC years count 1 BC, 2 BC, ... (astronomical year 0 = 1 BC).
 *
 * Ranges: dates from 4714-11-24 BC to 5874897-12-31; timestamps from 4714-11-24 00:00:00 BC
 * (UTC for timestamptz) to before 294277-01-01. A timestamp(p)/time(p) typmod is p (0..6); values
 * are rounded to p fraction digits, half away from zero, as the server's input does.
 */
import { ascii, doesNotFit, malformed, type Codec, type JsValue } from './codec-common.js';
import {
  DATE_END, DATE_MIN, DAYS_IN_MONTH, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, POSTGRES_EPOCH_JDATE, TS_END, TS_MIN, UNIX_EPOCH_MS_FROM_2000, USECS_PER_DAY, date2j, formatDate, formatTimestamp, isLeap, jsZone, pgFraction, pgZone, splitTime,
} from './datetime-calendar.js';


// --- parsing what a transform returns

const DATE_PART = '([0-9]{4,7})-([0-9]{2})-([0-9]{2})';
const TIME_PART = '([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\\.([0-9]+))?)?';
const ZONE_PART = '(Z|z|[+-][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2})?)?)';
const ERA_PART = '(?: (BC|AD))?';
const DATE_IN = new RegExp(`^${DATE_PART}${ERA_PART}$`);
const TIMESTAMP_IN = new RegExp(`^${DATE_PART}[T ]${TIME_PART}${ERA_PART}$`);
const TIMESTAMPTZ_IN = new RegExp(`^${DATE_PART}[T ]${TIME_PART}${ZONE_PART}${ERA_PART}$`);
const TIME_IN = new RegExp(`^${TIME_PART}$`);

/** Julian-day-relative days of a parsed date, or a reason it is not a valid date. */
function daysOf(yearText: string, monthText: string, dayText: string, era: string | undefined): number | string {
  const y = Number(yearText);
  const month = Number(monthText);
  const day = Number(dayText);
  if (y === 0) return 'there is no year 0 (1 BC is followed by 1 AD)';
  const year = era === 'BC' ? 1 - y : y;
  if (month < 1 || month > 12) return 'month out of range';
  const maxDay = month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day < 1 || day > maxDay) return 'day out of range';
  if (year < -4713 || year > 5874898) return 'out of range';
  return date2j(year, month, day) - POSTGRES_EPOCH_JDATE;
}

/** Microseconds of a parsed time of day, or a reason it is not one (24:00:00 is allowed). */
function timeOf(h: string, m: string, s: string | undefined, frac: string | undefined): number | string {
  const hour = Number(h);
  const minute = Number(m);
  const second = s === undefined ? 0 : Number(s);
  if (frac !== undefined && frac.length > 6) return 'more than 6 fraction digits (the types hold microseconds)';
  const us = frac === undefined ? 0 : Number(frac.padEnd(6, '0'));
  if (minute > 59 || second > 59) return 'time field out of range';
  if (hour > 24 || (hour === 24 && (minute > 0 || second > 0 || us > 0))) return 'time field out of range';
  return ((hour * 60 + minute) * 60 + second) * 1000000 + us;
}

/** Seconds east of UTC of a zone designator; PostgreSQL allows up to ±15:59:59. */
function offsetOf(zone: string): number | string {
  if (zone === 'Z' || zone === 'z') return 0;
  const digits = zone.slice(1).replace(/:/g, '');
  if (digits.length % 2 !== 0) return 'malformed UTC offset';
  const h = Number(digits.slice(0, 2));
  const m = digits.length >= 4 ? Number(digits.slice(2, 4)) : 0;
  const s = digits.length >= 6 ? Number(digits.slice(4, 6)) : 0;
  if (h > 15 || m > 59 || s > 59) return 'UTC offset out of range';
  const secs = h * 3600 + m * 60 + s;
  return zone.startsWith('-') ? -secs : secs;
}

const TIME_SCALES = [1000000n, 100000n, 10000n, 1000n, 100n, 10n, 1n];

/** AdjustTimestampForTypmod / AdjustTimeForTypmod: round half away from zero to p digits. */
function roundToPrecision(us: bigint, typmod: number): bigint {
  if (typmod < 0 || typmod >= 6) return us;
  const scale = TIME_SCALES[typmod]!;
  const half = scale / 2n;
  return us >= 0n ? ((us + half) / scale) * scale : -(((-us + half) / scale) * scale);
}

// --- date

type DateValue = number | 'infinity' | '-infinity';

function toDate(value: JsValue): DateValue {
  if (value === 'infinity' || value === '-infinity') return value;
  let days: number;
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw doesNotFit(value, 'date', 'invalid Date');
    if (ms % 86400000 !== 0) throw doesNotFit(value, 'date', 'the Date has a time of day (a date is midnight UTC)');
    days = (ms - UNIX_EPOCH_MS_FROM_2000) / 86400000;
  } else {
    if (typeof value !== 'string') throw doesNotFit(value, 'date', "expected 'YYYY-MM-DD' or a Date");
    const m = DATE_IN.exec(value);
    if (!m) throw doesNotFit(value, 'date', "expected 'YYYY-MM-DD', 'YYYY-MM-DD BC', 'infinity' or '-infinity'");
    const parsed = daysOf(m[1]!, m[2]!, m[3]!, m[4]);
    if (typeof parsed === 'string') throw doesNotFit(value, 'date', parsed);
    days = parsed;
  }
  if (days < DATE_MIN || days >= DATE_END) throw doesNotFit(value, 'date', 'out of range (4714-11-24 BC .. 5874897-12-31)');
  return days;
}

function dateText(d: DateValue): string {
  if (typeof d === 'string') return d;
  const { text, bc } = formatDate(d);
  return bc ? `${text} BC` : text;
}

const DATE_OUT = /^[0-9]{4,}-[0-9]{2}-[0-9]{2}(?: BC)?$/;

export const dateCodec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (text === 'infinity' || text === '-infinity' || DATE_OUT.test(text)) return text;
    throw malformed('date (DateStyle must be ISO)', raw, 0);
  },
  decodeBinary(raw) {
    if (raw.length !== 4) throw malformed('date', raw, 1);
    const days = raw.readInt32BE(0);
    if (days === INT32_MAX) return 'infinity';
    if (days === INT32_MIN) return '-infinity';
    if (days < DATE_MIN || days >= DATE_END) throw malformed('date', raw, 1);
    return dateText(days);
  },
  encodeText: (value) => ascii(dateText(toDate(value))),
  encodeBinary(value) {
    const d = toDate(value);
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(d === 'infinity' ? INT32_MAX : d === '-infinity' ? INT32_MIN : d, 0);
    return b;
  },
};

// --- timestamp and timestamptz

type TimestampValue = bigint | 'infinity' | '-infinity';

function fromDateObject(value: Date, typeName: string): bigint {
  const ms = value.getTime();
  if (Number.isNaN(ms)) throw doesNotFit(value, typeName, 'invalid Date');
  return BigInt(ms - UNIX_EPOCH_MS_FROM_2000) * 1000n;
}

function checkTimestampRange(us: bigint, value: JsValue, typeName: string): void {
  if (us < TS_MIN || us >= TS_END) throw doesNotFit(value, typeName, 'out of range (4714-11-24 BC .. 294276-12-31)');
}

/** Wall-clock microseconds of a timestamp string (no zone) or a Date (its UTC wall clock). */
function toTimestamp(value: JsValue, typmod: number): TimestampValue {
  if (value === 'infinity' || value === '-infinity') return value;
  let us: bigint;
  if (value instanceof Date) {
    us = fromDateObject(value, 'timestamp');
  } else {
    if (typeof value !== 'string') throw doesNotFit(value, 'timestamp', "expected 'YYYY-MM-DDTHH:MM:SS.ffffff' or a Date");
    const m = TIMESTAMP_IN.exec(value);
    if (!m) {
      const why = TIMESTAMPTZ_IN.test(value)
        ? 'a timestamp has no time zone: drop the UTC offset'
        : "expected 'YYYY-MM-DDTHH:MM:SS.ffffff' (optionally ' BC'), 'infinity' or '-infinity'";
      throw doesNotFit(value, 'timestamp', why);
    }
    // groups: 1-3 date, 4-7 time, 8 era
    const days = daysOf(m[1]!, m[2]!, m[3]!, m[8]);
    if (typeof days === 'string') throw doesNotFit(value, 'timestamp', days);
    const tod = timeOf(m[4]!, m[5]!, m[6], m[7]);
    if (typeof tod === 'string') throw doesNotFit(value, 'timestamp', tod);
    us = BigInt(days) * USECS_PER_DAY + BigInt(tod);
  }
  us = roundToPrecision(us, typmod);
  checkTimestampRange(us, value, 'timestamp');
  return us;
}

interface Instant {
  readonly utc: bigint;
  /** Seconds east of UTC to print it in. */
  readonly offset: number;
}

/** UTC microseconds and display offset of a timestamptz string (offset required) or a Date. */
function toTimestamptz(value: JsValue, typmod: number): Instant | 'infinity' | '-infinity' {
  if (value === 'infinity' || value === '-infinity') return value;
  let utc: bigint;
  let offset = 0;
  if (value instanceof Date) {
    utc = fromDateObject(value, 'timestamptz');
  } else {
    if (typeof value !== 'string') {
      throw doesNotFit(value, 'timestamptz', "expected 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (or +HH:MM) or a Date");
    }
    const m = TIMESTAMPTZ_IN.exec(value);
    if (!m) {
      const why = TIMESTAMP_IN.test(value)
        ? 'a timestamptz needs a UTC offset (Z or +HH:MM): the session TimeZone is not known here'
        : "expected 'YYYY-MM-DDTHH:MM:SS.ffffffZ' or with a +HH:MM offset (optionally ' BC'), 'infinity' or '-infinity'";
      throw doesNotFit(value, 'timestamptz', why);
    }
    // groups: 1-3 date, 4-7 time, 8 zone, 9 era
    const days = daysOf(m[1]!, m[2]!, m[3]!, m[9]);
    if (typeof days === 'string') throw doesNotFit(value, 'timestamptz', days);
    const tod = timeOf(m[4]!, m[5]!, m[6], m[7]);
    if (typeof tod === 'string') throw doesNotFit(value, 'timestamptz', tod);
    const off = offsetOf(m[8]!);
    if (typeof off === 'string') throw doesNotFit(value, 'timestamptz', off);
    offset = off;
    utc = BigInt(days) * USECS_PER_DAY + BigInt(tod) - BigInt(offset) * 1000000n;
  }
  utc = roundToPrecision(utc, typmod);
  checkTimestampRange(utc, value, 'timestamptz');
  return { utc, offset };
}

function writeInt64(n: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64BE(n, 0);
  return b;
}

function readTimestamp(raw: Buffer, typeName: string): TimestampValue {
  if (raw.length !== 8) throw malformed(typeName, raw, 1);
  const us = raw.readBigInt64BE(0);
  if (us === INT64_MAX) return 'infinity';
  if (us === INT64_MIN) return '-infinity';
  if (us < TS_MIN || us >= TS_END) throw malformed(typeName, raw, 1);
  return us;
}

const TIMESTAMP_OUT = /^([0-9]{4,}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?( BC)?$/;
const TIMESTAMPTZ_OUT =
  /^([0-9]{4,}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?([+-][0-9]{2}(?::[0-9]{2}(?::[0-9]{2})?)?)( BC)?$/;

export const timestampCodec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (text === 'infinity' || text === '-infinity') return text;
    const m = TIMESTAMP_OUT.exec(text);
    if (!m) throw malformed('timestamp (DateStyle must be ISO)', raw, 0);
    return `${m[1]!}T${m[2]!}.${(m[3] ?? '').padEnd(6, '0')}${m[4] ?? ''}`;
  },
  decodeBinary(raw) {
    const t = readTimestamp(raw, 'timestamp');
    return typeof t === 'string' ? t : formatTimestamp(t, 'js');
  },
  encodeText(value, typmod) {
    const t = toTimestamp(value, typmod);
    return ascii(typeof t === 'string' ? t : formatTimestamp(t, 'pg'));
  },
  encodeBinary(value, typmod) {
    const t = toTimestamp(value, typmod);
    return writeInt64(t === 'infinity' ? INT64_MAX : t === '-infinity' ? INT64_MIN : t);
  },
};

export const timestamptzCodec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (text === 'infinity' || text === '-infinity') return text;
    const m = TIMESTAMPTZ_OUT.exec(text);
    if (!m) throw malformed('timestamptz (DateStyle must be ISO)', raw, 0);
    const off = offsetOf(m[4]!);
    if (typeof off === 'string') throw malformed('timestamptz', raw, 0);
    return `${m[1]!}T${m[2]!}.${(m[3] ?? '').padEnd(6, '0')}${jsZone(off)}${m[5] ?? ''}`;
  },
  decodeBinary(raw) {
    const t = readTimestamp(raw, 'timestamptz');
    return typeof t === 'string' ? t : formatTimestamp(t, 'js', 'Z');
  },
  encodeText(value, typmod) {
    const t = toTimestamptz(value, typmod);
    if (typeof t === 'string') return ascii(t);
    return ascii(formatTimestamp(t.utc + BigInt(t.offset) * 1000000n, 'pg', pgZone(t.offset)));
  },
  encodeBinary(value, typmod) {
    const t = toTimestamptz(value, typmod);
    return writeInt64(t === 'infinity' ? INT64_MAX : t === '-infinity' ? INT64_MIN : t.utc);
  },
};

// --- time

function toTime(value: JsValue, typmod: number): number {
  if (typeof value !== 'string') throw doesNotFit(value, 'time', "expected 'HH:MM:SS.ffffff'");
  const m = TIME_IN.exec(value);
  if (!m) throw doesNotFit(value, 'time', "expected 'HH:MM:SS.ffffff'");
  const us = timeOf(m[1]!, m[2]!, m[3], m[4]);
  if (typeof us === 'string') throw doesNotFit(value, 'time', us);
  return Number(roundToPrecision(BigInt(us), typmod));
}

const TIME_OUT = /^([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?$/;

export const timeCodec: Codec = {
  decodeText(raw) {
    const m = TIME_OUT.exec(raw.toString('latin1'));
    if (!m) throw malformed('time', raw, 0);
    return `${m[1]!}.${(m[2] ?? '').padEnd(6, '0')}`;
  },
  decodeBinary(raw) {
    if (raw.length !== 8) throw malformed('time', raw, 1);
    const us = raw.readBigInt64BE(0);
    if (us < 0n || us > USECS_PER_DAY) throw malformed('time', raw, 1);
    const { hms, frac } = splitTime(Number(us));
    return `${hms}.${frac}`;
  },
  encodeText(value, typmod) {
    const { hms, frac } = splitTime(toTime(value, typmod));
    return ascii(`${hms}${pgFraction(frac)}`);
  },
  encodeBinary: (value, typmod) => writeInt64(BigInt(toTime(value, typmod))),
};
