/**
 * Statement shapes (statement-shape.ts), cached so that a text seen before, or one that differs
 * from a seen one only in its constants, costs a lookup instead of four calls into the parser.
 *
 * The second case is what simple-protocol point lookups send: each carries its key as a literal.
 * Such a text is keyed by its masked form (constant-mask.ts). A mask is trusted to stand for its
 * texts only after the check made on the first text seen with it: the shape of that text with
 * every constant replaced by another value of its class must be the same shape, and the statement
 * must be one read or write (SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, TABLE, WITH). Why that
 * suffices: texts of one mask give the parser the same token kinds, so the same parse tree but for
 * its constants; the fingerprint leaves out constants (A_Const nodes) and the normalised text
 * replaces them, so a constant whose value either of them keeps (a type modifier, a password
 * option) shows in the check as a difference, and the mask is marked as not standing for its
 * texts. Masked texts hold no comment, so no traceparent.
 */
import { LRUCache } from 'lru-cache';
import type { SqlAnalyser } from '../sql/analyser.js';
import { maskConstants, withOtherConstants } from './constant-mask.js';
import { shapeOf, type StatementShape } from './statement-shape.js';

const ENTRIES = 2_000;
const DML = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'VALUES', 'TABLE', 'WITH']);

export class ShapeCache {
  /** By exact text: texts that repeat (prepared statements, ORMs) and texts without a trusted mask. */
  private readonly byText = new LRUCache<string, StatementShape>({ max: ENTRIES });
  /** By masked text: the shape its texts share, or false where the check found they do not. */
  private readonly byMask = new LRUCache<string, StatementShape | false>({ max: ENTRIES });

  constructor(private readonly sql: SqlAnalyser) {}

  get(text: string): StatementShape {
    const exact = this.byText.get(text);
    if (exact) return exact;
    const masked = maskConstants(text);
    if (masked === null || masked.constants.length === 0) return this.computed(text);
    const shared = this.byMask.get(masked.key);
    if (shared) return shared;
    if (shared === false) return this.computed(text);
    const shape = shapeOf(this.sql, text);
    const trusted = shape.statements === 1 && shape.operation !== null && DML.has(shape.operation)
      && sameShape(shape, shapeOf(this.sql, withOtherConstants(text, masked)));
    this.byMask.set(masked.key, trusted ? shape : false);
    if (!trusted) this.byText.set(text, shape);
    return shape;
  }

  private computed(text: string): StatementShape {
    const shape = shapeOf(this.sql, text);
    this.byText.set(text, shape);
    return shape;
  }
}

function sameShape(a: StatementShape, b: StatementShape): boolean {
  return a.fingerprint === b.fingerprint && a.normalized === b.normalized && a.operation === b.operation
    && a.summary === b.summary && a.statements === b.statements && a.traceparent === null && b.traceparent === null;
}
