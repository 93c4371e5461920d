import { Listener } from '../db/listener';
import type { Logger } from '../log';
import { ROLLOUTS_CHANNEL } from './rollouts';

/**
 * One per gateway process: hears ROLLOUTS_CHANNEL (every replica's rollout changes) on one LISTEN
 * session and tells whoever watches: the runner (any rollout) and `rolloutProgress` subscribers (one
 * rollout each). It carries only "rollout N changed"; watchers read the rows themselves.
 */
export class RolloutChangeHub {
  private readonly listener: Listener;
  private readonly watchers = new Map<number, Set<() => void>>();
  private readonly anyWatchers = new Set<(id: number | undefined) => void>();

  constructor(databaseUrl: string, log: Logger) {
    this.listener = new Listener({
      databaseUrl,
      applicationName: 'fleetgate-rollouts-listen',
      channels: [ROLLOUTS_CHANNEL],
      onNotification: (_channel, payload) => this.changed(Number(payload)),
      // NOTIFYs sent while the session was lost are gone: every watcher reads again.
      onReconnected: () => this.changed(undefined),
      name: 'rollout listener',
      log,
    });
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }

  /** Calls `onChange` when rollout `id` may have changed, until the returned function is called. */
  watch(id: number, onChange: () => void): () => void {
    let set = this.watchers.get(id);
    if (!set) this.watchers.set(id, (set = new Set()));
    set.add(onChange);
    return () => {
      set.delete(onChange);
      if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
    };
  }

  /** Calls `onChange` with the id of every rollout changed (undefined: any may have). */
  watchAll(onChange: (id: number | undefined) => void): () => void {
    this.anyWatchers.add(onChange);
    return () => this.anyWatchers.delete(onChange);
  }

  get watcherCount(): number {
    let count = 0;
    for (const set of this.watchers.values()) count += set.size;
    return count;
  }

  private changed(id: number | undefined): void {
    for (const watcher of this.anyWatchers) watcher(id);
    if (id === undefined || !Number.isFinite(id)) {
      for (const set of this.watchers.values()) for (const watcher of set) watcher();
    } else for (const watcher of this.watchers.get(id) ?? []) watcher();
  }
}
