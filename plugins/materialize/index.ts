/**
 * The materialize plugin, built from the services it needs (the proxy's own connection, the SQL
 * analyser, transforms to run chains, time travel to read moments): materialised versions made on
 * request, and the service through which time travel serves reads from them.
 */
import type { Plugin } from '../hooks.js';
import type { MaterializeService, ProvenanceService, Services } from '../services.js';
import { MaterializePlugin } from './plugin.js';

export { createMaterialization, type MaterializeDeps, type MaterializeRequest } from './create.js';

export interface MaterializePart {
  readonly plugin: Plugin;
  readonly service: MaterializeService;
  /** The provenance service, seen by this plugin too: replays tell it which tables the replay cache served. */
  tap(provenance: ProvenanceService): ProvenanceService;
}

export function createMaterializePlugin(services: Services): MaterializePart {
  const plugin = new MaterializePlugin(services);
  return {
    plugin,
    service: { serving: (s, text, tables) => plugin.serving(s, text, tables) },
    tap: (provenance) => ({
      ...provenance,
      get recording() {
        return provenance.recording;
      },
      record: (s, r) => {
        plugin.noteRecord(s, r);
        return provenance.record(s, r);
      },
    }),
  };
}
