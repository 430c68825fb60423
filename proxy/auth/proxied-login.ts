/**
 * A login in two legs (PgBouncer's design): the server asks the proxy for a password; the proxy
 * asks the client in turn, as a server of its own (its TLS, its channel binding), checks the
 * answer against the verifier the auth query read, and answers the server with what the client
 * proved: for SCRAM the ClientKey recovered from the client's proof (key pass-through), with
 * channel binding to the server's certificate when the link uses TLS; for md5 the response the
 * stored hash gives. Whatever else the server asks (trust, cleartext), or when the verifier
 * cannot be read, the login is relayed as a whole.
 *
 * A relayed SCRAM login cannot bind to the server's certificate (the proxy ends the client's
 * TLS), so SCRAM-SHA-256-PLUS is withdrawn; toward a server on TLS, a client that could bind
 * (GS2 flag 'y') is then refused by the proxy itself, as the server would refuse it.
 */
import { randomBytes } from 'node:crypto';
import { PgError, SqlState } from '../errors.js';
import { AuthCode, Backend } from '../wire/codes.js';
import type { Frame } from '../wire/framer.js';
import type { ClientConversation } from '../upstream/link.js';
import type { FrameQueue } from './frame-queue.js';
import type { SecretLookup } from './auth-query.js';
import {
  decodeAuthRequest, decodeMechanisms, decodePassword, decodeSaslInitial, decodeSaslResponse, md5Request,
  passwordMessage, saslContinue, saslFinal, saslInitialResponse, saslRequest, saslResponse,
} from './messages.js';
import { SCRAM, SCRAM_PLUS, ScramClient, ScramServer, mockVerifier, parseVerifier, type ScramVerifier } from './scram.js';
import { md5Matches, md5Response, parseMd5Secret } from './md5.js';

export interface LoginLegs {
  readonly user: string;
  readonly client: ClientConversation;
  /** Server messages of the login, read by the proxy. */
  readonly server: FrameQueue;
  writeServer(msg: Buffer): void;
  /** Binding data of the server's certificate when the link uses TLS, else null. */
  readonly serverBinding: Buffer | null;
  /** The auth query; null: every login is relayed. */
  readonly lookup: SecretLookup | null;
  /** A TLS client was refused because a relayed login cannot bind (see downgrade-guard.ts). */
  bindingRefused(): void;
}

/** Server messages that go to the client ahead of what the server sends next, in order. */
export type Relayed = Buffer[];

/**
 * Run the login up to the point where the rest is plain relay: either the server's answer to a
 * login the proxy completed (AuthenticationOk or its error), or the server's first request.
 * Throws a FATAL PgError (28P01 for a wrong password) when the client fails its leg.
 */
export async function proxiedLogin(legs: LoginLegs): Promise<Relayed> {
  const before: Buffer[] = [];
  let first = await legs.server.next();
  // NegotiateProtocolVersion may come ahead of the first request.
  while (first.code !== Backend.Authentication && first.code !== Backend.ErrorResponse) {
    before.push(first.raw);
    first = await legs.server.next();
  }
  if (first.code !== Backend.Authentication) return [...before, first.raw];
  const { code, body } = decodeAuthRequest(first.raw);
  const offered = code === AuthCode.SASL ? decodeMechanisms(body) : [];
  if (offered.includes(SCRAM)) {
    const secret = legs.lookup ? await legs.lookup(legs.user) : undefined;
    const verifier = secret ? parseVerifier(secret) : null;
    if (verifier || legs.serverBinding) for (const b of before) legs.client.send(b);
    if (verifier) return scram(legs, verifier, offered);
    // Toward a server that binds, a relayed exchange fails for any client that could bind. When the
    // auth query answered and gave no SCRAM verifier, the server would fail the login after a mock
    // exchange: so does the proxy.
    if (legs.serverBinding) {
      if (secret === undefined) return relayedScram(legs, offered);
      await clientLeg(legs, mockVerifier(legs.user));
      throw passwordFailed(legs.user);
    }
  } else if (code === AuthCode.MD5Password && legs.lookup) {
    const secret = await legs.lookup(legs.user);
    const stored = secret ? parseMd5Secret(secret) : null;
    if (stored) {
      for (const b of before) legs.client.send(b);
      return md5(legs, stored, body.subarray(0, 4));
    }
  }
  return [...before, first.raw];
}

function passwordFailed(user: string): PgError {
  return new PgError(SqlState.InvalidPassword, `password authentication failed for user "${user}"`, 'FATAL');
}

/** The exchange with the client, up to its proof: what it proved, or a 28P01 when the proof is wrong. */
async function clientLeg(legs: LoginLegs, verifier: ScramVerifier): Promise<{ clientKey: Buffer; serverFinal: string }> {
  const { client } = legs;
  const server = new ScramServer(verifier, client.binding);
  client.send(saslRequest(server.mechanisms()));
  let f = await client.next();
  const initial = decodeSaslInitial(f.code, f.raw);
  client.send(saslContinue(server.first(initial.mechanism, initial.data)));
  f = await client.next();
  const proved = server.final(decodeSaslResponse(f.code, f.raw));
  if (!proved) throw passwordFailed(legs.user);
  return proved;
}

async function scram(legs: LoginLegs, verifier: ScramVerifier, offered: readonly string[]): Promise<Relayed> {
  const proved = await clientLeg(legs, verifier);
  const binding = legs.serverBinding && offered.includes(SCRAM_PLUS) ? legs.serverBinding : null;
  const upstream = new ScramClient(proved.clientKey, verifier.serverKey, binding);
  legs.writeServer(saslInitialResponse(upstream.mechanism, upstream.first()));
  const cont = await expectRequest(legs.server, AuthCode.SASLContinue);
  if (!cont.body) return [cont.frame.raw];
  legs.writeServer(saslResponse(upstream.final(cont.body.toString('utf8'))));
  const fin = await expectRequest(legs.server, AuthCode.SASLFinal);
  if (!fin.body) return [fin.frame.raw];
  if (!upstream.verify(fin.body.toString('utf8'))) {
    throw new PgError(SqlState.ConnectionFailure, 'the upstream server did not prove it knows the password (incorrect server signature)', 'FATAL');
  }
  // The client learns it is in only once the server said so; AuthenticationOk follows from it.
  return [saslFinal(proved.serverFinal)];
}

/** The client's first SCRAM message is checked here, then the rest of the exchange is relayed. */
async function relayedScram(legs: LoginLegs, offered: readonly string[]): Promise<Relayed> {
  legs.client.send(saslRequest(offered.filter((m) => m !== SCRAM_PLUS)));
  const f = await legs.client.next();
  const initial = decodeSaslInitial(f.code, f.raw);
  if (initial.mechanism === SCRAM && initial.data.startsWith('y,')) {
    legs.bindingRefused();
    throw new PgError(SqlState.ProtocolViolation, 'SCRAM channel binding negotiation error', 'FATAL', {
      detail: 'The proxy relays this login, so it cannot bind to the server\'s certificate, and the server, which supports channel binding, ' +
        'refuses a client that could bind but does not.',
      hint: 'Connect with channel_binding=disable, or let the proxy\'s login run its auth query so that it completes the login itself.',
    });
  }
  legs.writeServer(f.raw);
  return [];
}

async function md5(legs: LoginLegs, stored: string, serverSalt: Buffer): Promise<Relayed> {
  const salt = randomBytes(4);
  legs.client.send(md5Request(salt));
  const f = await legs.client.next();
  if (!md5Matches(stored, salt, decodePassword(f.code, f.raw))) throw passwordFailed(legs.user);
  legs.writeServer(passwordMessage(md5Response(stored, serverSalt)));
  return [];
}

/**
 * The server's next message: the awaited request's body, or (body null) an ErrorResponse or
 * anything else, which goes to the client as the server's own answer.
 */
async function expectRequest(server: FrameQueue, code: AuthCode): Promise<{ frame: Frame; body: Buffer | null }> {
  const frame = await server.next();
  if (frame.code === Backend.Authentication) {
    const r = decodeAuthRequest(frame.raw);
    if (r.code === code) return { frame, body: r.body };
  }
  if (frame.code === Backend.ErrorResponse) return { frame, body: null };
  throw new PgError(SqlState.ProtocolViolation, `unexpected message from the upstream server during authentication (type ${frame.code})`, 'FATAL');
}
