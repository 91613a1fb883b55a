// Small pieces shared by the tables: a progress bar with its words, and the phase and status with
// a symbol and a word, never colour alone.
import type { TaskStatus, UploadPhase } from '../api-types.js';
import { percent } from '../format.js';

/** A bar and its words; a screen reader hears the words as the bar's value, once. */
export function Bar(props: { label: string; value: number; max: number; text: string }) {
  const words = `${props.text} · ${percent(props.value, props.max)}%`;
  return (
    <div class="bar">
      <progress
        aria-label={props.label}
        aria-valuetext={words}
        value={props.value}
        max={props.max > 0 ? props.max : 1}
      />
      <span class="bar-text" aria-hidden="true">
        {words}
      </span>
    </div>
  );
}

const PHASE_SYMBOLS: Record<UploadPhase, string> = {
  scanning: '⟳',
  uploading: '↑',
  idle: '✓',
  completed: '✔',
  failed: '!',
  cancelled: '×',
};

export function PhaseBadge({ phase }: { phase: UploadPhase }) {
  return (
    <span class={`badge phase-${phase}`} data-phase={phase}>
      <span aria-hidden="true">{PHASE_SYMBOLS[phase]}</span> {phase}
    </span>
  );
}

const STATUS_WORDS: Record<TaskStatus, [symbol: string, word: string]> = {
  pending: ['…', 'pending'],
  in_progress: ['↑', 'in progress'],
  completed: ['✓', 'completed'],
  failed: ['!', 'failed'],
};

export function StatusText({ status }: { status: TaskStatus }) {
  const [symbol, word] = STATUS_WORDS[status];
  return (
    <span class={`status status-${status}`}>
      <span aria-hidden="true">{symbol}</span> {word}
    </span>
  );
}
