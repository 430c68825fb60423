/**
 * The time-travel plugin, built from the services it needs (the SQL analyser, the proxy's own
 * connection, the upstream's roles): sessions that read as of a moment, and the service through
 * which transforms and provenance learn that moment and where a history column comes from.
 */
import type { Plugin } from '../hooks.js';
import type { Services, TimeTravelService } from '../services.js';
import { TimeTravelPlugin } from './plugin.js';

export interface TimeTravelPart {
  readonly plugin: Plugin;
  readonly service: TimeTravelService;
}

export function createTimeTravelPlugin(services: Services): TimeTravelPart {
  const plugin = new TimeTravelPlugin(services);
  return {
    plugin,
    service: {
      asOf: (session) => plugin.asOf(session),
      sourceOf: (relationOid, attnum) => plugin.catalog.sourceOf(relationOid, attnum),
      momentOf: (s, input, user) => plugin.momentOf(s, input, user),
    },
  };
}
