/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, for both legs of a login: the
 * proxy verifies the client's proof against the stored verifier, recovers the ClientKey from
 * it, and proves the same key to the server (key pass-through). Written on node:crypto: the
 * maintained SCRAM libraries for Node are client-only, and the server side is a few HMACs.
 *
 * Messages (RFC 5802 §7), as PostgreSQL uses them (the user name in n= is ignored, empty):
 *   client-first  gs2-header client-first-bare   gs2-header = "n,," | "y,," | "p=tls-server-end-point,,"
 *                 client-first-bare = "n=" user ",r=" c-nonce
 *   server-first  "r=" c-nonce s-nonce ",s=" base64(salt) ",i=" iterations
 *   client-final  "c=" base64(gs2-header channel-binding-data) ",r=" nonce ",p=" base64(proof)
 *   server-final  "v=" base64(ServerSignature) | "e=" error
 *   AuthMessage = client-first-bare "," server-first "," client-final-without-proof
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PgError, SqlState } from '../errors.js';

export const SCRAM = 'SCRAM-SHA-256';
export const SCRAM_PLUS = 'SCRAM-SHA-256-PLUS';
export const CHANNEL_BINDING_TYPE = 'tls-server-end-point';

/** A stored SCRAM-SHA-256 verifier: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export interface ScramVerifier {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

export function parseVerifier(secret: string): ScramVerifier | null {
  const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(secret);
  if (!m) return null;
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (storedKey.length !== 32 || serverKey.length !== 32) return null;
  return { iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64'), storedKey, serverKey };
}

/** Keys the mock salts: the same user gets the same salt for the life of the process. */
const MOCK_KEY = randomBytes(32);

/**
 * A verifier no proof matches, for a user with none: the exchange runs as for any user (with a
 * salt that stays the same per user, as PostgreSQL's mock authentication does) and then fails.
 */
export function mockVerifier(user: string): ScramVerifier {
  return {
    iterations: 4096,
    salt: createHmac('sha256', MOCK_KEY).update(user).digest().subarray(0, 16),
    storedKey: randomBytes(32),
    serverKey: randomBytes(32),
  };
}

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function malformed(detail: string): PgError {
  return new PgError(SqlState.ProtocolViolation, 'malformed SCRAM message', 'FATAL', { detail });
}

function negotiation(detail: string): PgError {
  return new PgError(SqlState.ProtocolViolation, 'SCRAM channel binding negotiation error', 'FATAL', { detail });
}

/** Attributes "k=v" separated by commas; values may contain '=' but not ','. */
function attribute(part: string | undefined, key: string): string {
  if (part === undefined || !part.startsWith(key + '=')) throw malformed(`Expected attribute "${key}".`);
  return part.slice(key.length + 1);
}

const nonce = (): string => randomBytes(18).toString('base64');

/**
 * The proxy as the SCRAM server toward a client. `bindingData` is the hash of the proxy's own
 * certificate when the client came over TLS (SCRAM-SHA-256-PLUS is then offered), else null.
 */
export class ScramServer {
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private fullNonce = '';

  constructor(
    private readonly verifier: ScramVerifier,
    private readonly bindingData: Buffer | null,
  ) {}

  mechanisms(): string[] {
    return this.bindingData ? [SCRAM_PLUS, SCRAM] : [SCRAM];
  }

  /** SASLInitialResponse → server-first-message. */
  first(mechanism: string, data: string): string {
    if (!this.mechanisms().includes(mechanism)) {
      throw new PgError(SqlState.ProtocolViolation, 'client selected an invalid SASL authentication mechanism', 'FATAL');
    }
    const parts = data.split(',');
    if (parts.length < 4) throw malformed('Expected a GS2 header, a user name and a nonce.');
    const flag = parts[0]!;
    if (mechanism === SCRAM_PLUS) {
      if (flag !== `p=${CHANNEL_BINDING_TYPE}`) {
        throw flag.startsWith('p=')
          ? malformed(`unsupported SCRAM channel-binding type "${flag.slice(2)}"`)
          : malformed('The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.');
      }
    } else if (flag === 'y') {
      // "I could bind, but I think you cannot": a downgrade, since this leg offers binding.
      if (this.bindingData) {
        throw negotiation('The client supports SCRAM channel binding but thinks the server does not.  However, this server does support channel binding.');
      }
    } else if (flag.startsWith('p=')) {
      throw malformed('The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.');
    } else if (flag !== 'n') {
      throw malformed('Unexpected channel-binding flag.');
    }
    if (parts[1] !== '') throw new PgError(SqlState.FeatureNotSupported, 'client uses authorization identity, but it is not supported', 'FATAL');
    this.gs2Header = `${flag},,`;
    this.clientFirstBare = parts.slice(2).join(',');
    attribute(parts[2], 'n');
    const clientNonce = attribute(parts[3], 'r');
    if (clientNonce === '' || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) throw malformed('Invalid client nonce.');
    this.fullNonce = clientNonce + nonce();
    const v = this.verifier;
    this.serverFirst = `r=${this.fullNonce},s=${v.salt.toString('base64')},i=${v.iterations}`;
    return this.serverFirst;
  }

  /**
   * SASLResponse → the ClientKey the client proved and the server-final-message, or null when
   * the proof is wrong (the password is wrong).
   */
  final(data: string): { clientKey: Buffer; serverFinal: string } | null {
    const proofAt = data.lastIndexOf(',p=');
    if (proofAt < 0) throw malformed('Could not find proof in client-final-message.');
    const withoutProof = data.slice(0, proofAt);
    const parts = withoutProof.split(',');
    const binding = Buffer.from(attribute(parts[0], 'c'), 'base64');
    const expected = Buffer.concat([Buffer.from(this.gs2Header), this.gs2Header.startsWith('p=') ? this.bindingData ?? Buffer.alloc(0) : Buffer.alloc(0)]);
    if (!binding.equals(expected)) throw new PgError(SqlState.ProtocolViolation, 'SCRAM channel binding check failed', 'FATAL');
    if (attribute(parts[1], 'r') !== this.fullNonce) throw malformed('Nonce does not match.');
    const proof = Buffer.from(data.slice(proofAt + 3), 'base64');
    if (proof.length !== 32) throw malformed('Malformed proof in client-final-message.');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.verifier.storedKey, authMessage));
    if (!timingSafeEqual(sha256(clientKey), this.verifier.storedKey)) return null;
    return { clientKey, serverFinal: `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}` };
  }
}

/**
 * The proxy as the SCRAM client toward the server, proving a ClientKey it recovered rather than
 * a password. `bindingData` is the hash of the server's certificate when the link uses TLS and
 * the server offers SCRAM-SHA-256-PLUS, else null.
 */
export class ScramClient {
  private readonly clientNonce = nonce();
  private readonly gs2Header: string;
  private authMessage = '';

  constructor(
    private readonly clientKey: Buffer,
    private readonly serverKey: Buffer,
    private readonly bindingData: Buffer | null,
  ) {
    this.gs2Header = bindingData ? `p=${CHANNEL_BINDING_TYPE},,` : 'n,,';
  }

  get mechanism(): string {
    return this.bindingData ? SCRAM_PLUS : SCRAM;
  }

  first(): string {
    return `${this.gs2Header}n=,r=${this.clientNonce}`;
  }

  /** server-first-message → client-final-message. */
  final(serverFirst: string): string {
    const parts = serverFirst.split(',');
    const fullNonce = attribute(parts[0], 'r');
    if (!fullNonce.startsWith(this.clientNonce) || fullNonce.length === this.clientNonce.length) throw malformed('Invalid server nonce.');
    attribute(parts[1], 's');
    attribute(parts[2], 'i');
    const binding = Buffer.concat([Buffer.from(this.gs2Header), this.bindingData ?? Buffer.alloc(0)]);
    const withoutProof = `c=${binding.toString('base64')},r=${fullNonce}`;
    this.authMessage = `n=,r=${this.clientNonce},${serverFirst},${withoutProof}`;
    const proof = xor(this.clientKey, hmac(sha256(this.clientKey), this.authMessage));
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Whether the server-final-message proves the server knows the ServerKey. */
  verify(serverFinal: string): boolean {
    if (!serverFinal.startsWith('v=')) return false;
    const signature = Buffer.from(serverFinal.slice(2).split(',')[0]!, 'base64');
    const expected = hmac(this.serverKey, this.authMessage);
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
}
