/**
 * The words plugins watch for, found in one scan of a message's bytes: every group's words in any
 * mix of cases, against a plain search of the lower-cased text.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WordGroups } from '../../plugins/words.js';
import { serialize } from 'pg-protocol';

const GROUPS = [['copy'], ['stdout'], ['provenance.as_', 'discard', 'reset'], ['provenance.', 'create ', 'drop '], ['create ', 'grant ']];

/** What the groups should report: bit i when the lower-cased text holds a word of group i. */
function naive(text: string): number {
  const lower = text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return GROUPS.reduce((found, words, i) => (words.some((w) => lower.includes(w)) ? found | (1 << i) : found), 0);
}

describe('WordGroups', () => {
  const groups = new WordGroups(GROUPS);

  it('finds each group\'s words in any mix of cases, in a Query and a Parse, and only in the body', () => {
    expect(groups.inMessage(serialize.query('SET Provenance.As_Of = 1'))).toBe(0b01100);
    expect(groups.inMessage(serialize.query('Copy t TO STDOUT'))).toBe(0b00011);
    expect(groups.inMessage(serialize.parse({ text: 'CREATE table x()' }))).toBe(0b11000);
    expect(groups.inMessage(serialize.query('select 1'))).toBe(0);
    expect(groups.inText('select * from provenance.executions')).toBe(0b01000);
    expect(groups.inText('grant_x')).toBe(0);
    expect(new WordGroups([[], []]).empty).toBe(true);
    expect(groups.empty).toBe(false);
  });

  it('answers as a plain search of the lower-cased text, for messages and texts', () => {
    const alphabet = [...'copyCOPYstdoutSTDOUTprovenance.as_PROVENANCE.AS_discardresetcreatedropgrant _x;'];
    const text = fc.array(fc.constantFrom(...alphabet), { maxLength: 60 }).map((a) => a.join(''));
    fc.assert(fc.property(text, (t) => {
      expect(groups.inMessage(serialize.query(t))).toBe(naive(t));
      expect(groups.inText(t)).toBe(naive(t));
    }), { numRuns: 2000 });
  });

  it('refuses words that are not printable ASCII or a single character, and more groups than it can tell apart', () => {
    expect(() => new WordGroups([['é']])).toThrow(/ASCII/);
    expect(() => new WordGroups([['x']])).toThrow(/two or more/);
    expect(() => new WordGroups(Array.from({ length: 31 }, () => ['xy']))).toThrow(/groups/);
  });
});
