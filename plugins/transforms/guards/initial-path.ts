/** The search_path a session starts with: shared with time travel. */
export { initialPath, startupPath } from '../../sql/initial-path.js';
