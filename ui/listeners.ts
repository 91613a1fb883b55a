/** A small publish–subscribe set: the page hands each event from the stream to the parts showing it. */
export class Listeners<T> {
  private readonly listeners = new Set<(value: T) => void>();

  /** Returns the way to stop listening. */
  add(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(value: T): void {
    for (const listener of [...this.listeners]) listener(value);
  }
}
