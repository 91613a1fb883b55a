// Small pieces shared by the tables: a progress bar with its words, and the phase and status with
// a symbol and a word, never colour alone.
import type { TaskStatus, UploadPhase } from '../api-types.js';
import { percent } from '../format.js';

export function Bar(props: { label: string; value: number; max: number; text: string }) {
  const share = percent(props.value, props.max);
  return (
    <div class="bar">
      <progress aria-label={props.label} value={props.value} max={props.max > 0 ? props.max : 1}>
        {share}%
      </progress>
      <span class="bar-text">
        {props.text} · {share}%
      </span>
    </div>
  );
}

const PHASE_SYMBOLS: Record<UploadPhase, string> = {
  scanning: '⟳',
  uploading: '↑',
  idle: '✓',
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
