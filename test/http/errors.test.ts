/** How errors met while serving a request become statuses and `{ code, message }`, and what never leaks. */
import { describe, expect, it } from 'vitest';
import { basicCredentials } from '../../plugins/http/auth.js';
import { HttpError, statusOf, toHttpError } from '../../plugins/http/errors.js';

describe('HTTP errors', () => {
  it('map SQLSTATEs to statuses', () => {
    const cases: [string, 'setup' | 'read', number][] = [
      ['28P01', 'setup', 401], ['28000', 'setup', 401], ['42501', 'read', 403], ['42P01', 'read', 404],
      ['57P03', 'read', 503], ['08001', 'setup', 503], ['22P02', 'read', 400], ['22007', 'setup', 400],
      // A moment outside a table's history is 22023 at the read (time travel's word); as a bad parameter, 400.
      ['22023', 'read', 409], ['22023', 'setup', 400], ['55000', 'read', 409], ['42601', 'setup', 400], ['0A000', 'read', 501], ['XX000', 'read', 500],
    ];
    for (const [code, phase, status] of cases) expect({ code, phase, status: statusOf(code, phase) }).toEqual({ code, phase, status });
  });

  it('show the server\'s words for errors about the request, and nothing of internal ones', () => {
    const denied = Object.assign(new Error('permission denied for table t'), { code: '42501', stack: 'at secret.js:1' });
    expect(toHttpError(denied).body()).toEqual({ code: '42501', message: 'permission denied for table t' });
    const internal = Object.assign(new Error('could not open file "base/1/2": No such file'), { code: '58P01' });
    expect(toHttpError(internal).body()).toEqual({ code: '58P01', message: 'internal error' });
    expect(toHttpError(new TypeError('x is undefined')).body()).toEqual({ code: 'XX000', message: 'internal error' });
    expect(toHttpError(new HttpError(404, '02000', 'no row'))).toMatchObject({ status: 404 });
  });

  it('read HTTP Basic credentials, and refuse anything else with 401', () => {
    expect(basicCredentials(`Basic ${Buffer.from('alice:pa:ss').toString('base64')}`)).toEqual({ user: 'alice', password: 'pa:ss' });
    expect(basicCredentials(`basic ${Buffer.from('bob:').toString('base64')}`)).toEqual({ user: 'bob', password: '' });
    for (const header of [undefined, 'Bearer abc', 'Basic', `Basic ${Buffer.from(':pw').toString('base64')}`]) {
      expect(() => basicCredentials(header)).toThrow(expect.objectContaining({ status: 401, code: '28000' }));
    }
  });
});
