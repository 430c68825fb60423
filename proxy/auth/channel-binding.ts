/**
 * tls-server-end-point channel binding data (RFC 5929 §4.1): the hash of the server's DER
 * certificate, with the hash of the certificate's signature algorithm, SHA-256 when that is
 * MD5 or SHA-1. Each leg of a login binds to the certificate its own server side presents.
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** Signature algorithm OIDs (DER content bytes, hex) whose hash is not SHA-256. */
const HASH_OF_SIGNATURE: ReadonlyMap<string, string> = new Map([
  ['2a864886f70d01010c', 'sha384'], // sha384WithRSAEncryption
  ['2a864886f70d01010d', 'sha512'], // sha512WithRSAEncryption
  ['2a8648ce3d040303', 'sha384'], // ecdsa-with-SHA384
  ['2a8648ce3d040304', 'sha512'], // ecdsa-with-SHA512
]);

/** DER: tag byte, length (short form, or 0x80|n then n big-endian bytes), contents. */
function header(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  return { tag, start, end: start + len };
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, … }, … }.
 * Returns the hash name for the binding; SHA-256 when the certificate cannot be read.
 */
function bindingHash(der: Buffer): string {
  try {
    const cert = header(der, 0);
    const tbs = header(der, cert.start);
    const alg = header(der, tbs.end);
    const oid = header(der, alg.start);
    if (oid.tag !== 0x06) return 'sha256';
    return HASH_OF_SIGNATURE.get(der.subarray(oid.start, oid.end).toString('hex')) ?? 'sha256';
  } catch {
    return 'sha256';
  }
}

export function endPointHash(der: Buffer): Buffer {
  return createHash(bindingHash(der)).update(der).digest();
}

/** Binding data of the certificate this end of a TLS connection presents (the proxy toward clients). */
export function ownBinding(sock: TLSSocket): Buffer | null {
  const cert = sock.getCertificate();
  return cert && 'raw' in cert && cert.raw ? endPointHash(cert.raw) : null;
}

/** Binding data of the certificate the other end presents (the server toward the proxy). */
export function peerBinding(sock: TLSSocket): Buffer | null {
  const cert = sock.getPeerCertificate();
  return cert && 'raw' in cert && cert.raw ? endPointHash(cert.raw) : null;
}
