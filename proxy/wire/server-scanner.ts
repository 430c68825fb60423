/**
 * Walks the server→client byte stream without decoding it. Messages whose code the caller
 * wants to look at come out whole; every other byte comes out as raw pieces, views into the
 * chunks as received, so the pass-through path never copies or re-encodes them.
 *
 * Wire format: Byte1 code, Int32 length (counts itself, not the code), body.
 */
import { PgError, SqlState } from '../errors.js';

export type Piece =
  | { readonly kind: 'raw'; readonly bytes: Buffer }
  | { readonly kind: 'frame'; readonly code: number; readonly raw: Buffer };

export class ServerScanner {
  /** Header bytes of a message whose header was split across chunks. */
  private header: Buffer = Buffer.alloc(0);
  /** Bytes still to pass through of a message we are not looking at. */
  private skip = 0;
  /** Parts of a watched message split across chunks. */
  private collecting: Buffer[] = [];
  private collectLeft = 0;
  private collectCode = 0;

  constructor(private readonly watch: (code: number) => boolean) {}

  scan(chunk: Buffer): Piece[] {
    const out: Piece[] = [];
    let off = 0;
    let rawStart = 0;
    const flushRaw = (end: number): void => {
      if (end > rawStart) out.push({ kind: 'raw', bytes: chunk.subarray(rawStart, end) });
    };
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      if (this.collectLeft > 0) {
        const n = Math.min(this.collectLeft, chunk.length - off);
        this.collecting.push(chunk.subarray(off, off + n));
        this.collectLeft -= n;
        off += n;
        rawStart = off;
        if (this.collectLeft === 0) {
          out.push({ kind: 'frame', code: this.collectCode, raw: Buffer.concat(this.collecting) });
          this.collecting = [];
        }
        continue;
      }
      // At a message boundary: read (possibly split) 5-byte header.
      let code: number;
      let len: number;
      let headerInChunk: boolean;
      if (this.header.length === 0 && chunk.length - off >= 5) {
        code = chunk[off]!;
        len = chunk.readInt32BE(off + 1);
        headerInChunk = true;
      } else {
        const need = 5 - this.header.length;
        const take = Math.min(need, chunk.length - off);
        const wasEmpty = this.header.length === 0;
        this.header = Buffer.concat([this.header, chunk.subarray(off, off + take)]);
        off += take;
        if (this.header.length < 5) {
          // Header still incomplete: bytes before it pass; the partial header is held back.
          if (wasEmpty) flushRaw(off - take);
          rawStart = off;
          continue;
        }
        if (wasEmpty) flushRaw(off - take);
        code = this.header[0]!;
        len = this.header.readInt32BE(1);
        headerInChunk = false;
      }
      if (len < 4) throw new PgError(SqlState.ProtocolViolation, `upstream sent a message of invalid length ${len}`, 'FATAL');
      if (this.watch(code)) {
        if (headerInChunk) {
          flushRaw(off);
          if (chunk.length - off >= len + 1) {
            out.push({ kind: 'frame', code, raw: chunk.subarray(off, off + len + 1) });
            off += len + 1;
            rawStart = off;
          } else {
            this.collecting = [chunk.subarray(off)];
            this.collectLeft = len + 1 - (chunk.length - off);
            this.collectCode = code;
            off = chunk.length;
            rawStart = off;
          }
        } else {
          this.collecting = [this.header];
          this.header = Buffer.alloc(0);
          this.collectLeft = len - 4;
          this.collectCode = code;
          rawStart = off;
          if (this.collectLeft === 0) {
            out.push({ kind: 'frame', code, raw: Buffer.concat(this.collecting) });
            this.collecting = [];
          }
        }
      } else if (headerInChunk) {
        this.skip = len + 1;
      } else {
        // A split header of a pass-through message: re-emit its held-back bytes, then skip the body.
        out.push({ kind: 'raw', bytes: this.header });
        this.header = Buffer.alloc(0);
        this.skip = len - 4;
        rawStart = off;
      }
    }
    flushRaw(off);
    return out;
  }
}

/**
 * The messages of a buffer that holds whole messages only (an embedded backend's answer), each a
 * view into it. A message cut short at the end is a protocol violation.
 */
export function wholeFrames(buf: Buffer): { readonly code: number; readonly raw: Buffer }[] {
  const out: { code: number; raw: Buffer }[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 5) break;
    const len = buf.readInt32BE(off + 1);
    if (len < 4) throw new PgError(SqlState.ProtocolViolation, `upstream sent a message of invalid length ${len}`, 'FATAL');
    if (off + 1 + len > buf.length) break;
    out.push({ code: buf[off]!, raw: buf.subarray(off, off + 1 + len) });
    off += 1 + len;
  }
  if (off < buf.length) throw new PgError(SqlState.ProtocolViolation, 'upstream sent a message cut short', 'FATAL');
  return out;
}
