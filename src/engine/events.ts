// The one stream of facts (see domain/events.ts): the engine publishes, the API's event stream and
// the metrics subscribe. Delivery is synchronous and in order; a listener must be quick (queue
// the work) and a listener that throws is logged, never allowed to break the engine.
import type { EventListener, EventSource, ServiceEvent } from '../domain/events.js';
import type { Logger } from '../logger.js';

export class EventBus implements EventSource {
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly logger?: Logger) {}

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  publish(event: ServiceEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger?.error({ err: error, event: event.type }, 'an event listener failed');
      }
    }
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}
