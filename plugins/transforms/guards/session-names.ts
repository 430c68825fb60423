/** How a session resolves names, followed statement by statement: shared with time travel. */
export { SessionNames } from '../../sql/session-names.js';
