import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../plugins/provenance/ids.js';

describe('record ids', () => {
  it('are UUID version 7: the time in front, version and variant set, unique', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => uuidv7(1_700_000_000_000 + i));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Later milliseconds sort later, so new rows land at the end of the indexes.
    expect([...ids].sort()).toEqual(ids);
    expect(uuidv7(0x0123456789ab).slice(0, 13)).toBe('01234567-89ab');
  });
});
