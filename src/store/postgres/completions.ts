// Completing files, a group commit's worth in one transaction and a few statements: a completed
// task never keeps a multipart upload that would look resumable, nor its upload an error about it,
// nor the listing an object its own record now describes; and a marker's arrival is recorded.
import type { CompletedUpload, EpochMs } from '../../domain/model.js';
import * as arrivals from './arrivals.js';
import type { Queryable } from './connection.js';
import * as existing from './existing-objects.js';
import * as multipart from './multipart.js';
import * as tasks from './tasks.js';
import * as uploads from './uploads.js';
import type { CompletedTask } from './tasks.js';

/** One file's completion, as completeTask is given it. */
export interface Completion {
  taskId: number;
  upload: CompletedUpload;
  now: EpochMs;
}

/**
 * In the transaction `tx`, each completion in order, as if one after the other: a task completes
 * if it is running for `instanceId`, so a task named twice completes at its first completion and
 * not its second. Returns whether each completed.
 */
export async function completeAll(
  tx: Queryable,
  instanceId: string,
  completions: readonly Completion[],
): Promise<boolean[]> {
  const firstIndexOf = new Map<number, number>();
  completions.forEach((completion, index) => {
    if (!firstIndexOf.has(completion.taskId)) firstIndexOf.set(completion.taskId, index);
  });
  const firsts = [...firstIndexOf.values()].map((index) => completions[index]!);
  const completed = await tasks.completeRunning(tx, instanceId, firsts);
  const done = new Set(completed.map((task) => task.taskId));
  if (completed.length > 0) {
    const nowOf = new Map(firsts.map((completion) => [completion.taskId, completion.now]));
    await multipart.removeAll(tx, [...done]);
    await uploads.forgetErrorsOfTasks(
      tx,
      completed.map((task) => ({ taskId: task.taskId, now: nowOf.get(task.taskId)! })),
    );
    // Each upload's last completion is the last of its files in the batch's order.
    const lastCompletions = new Map<string, EpochMs>();
    const uploadOf = new Map(completed.map((task) => [task.taskId, task.uploadId]));
    for (const completion of firsts) {
      const uploadId = uploadOf.get(completion.taskId);
      if (uploadId !== undefined) lastCompletions.set(uploadId, completion.now);
    }
    await uploads.markCompletions(tx, lastCompletions);
    await existing.forgetKeysOf(tx, completed);
    const markers = markerArrivals(firsts, completed);
    if (markers.length > 0) await arrivals.recordMarkers(tx, instanceId, markers);
  }
  return completions.map(
    (completion, index) => firstIndexOf.get(completion.taskId) === index && done.has(completion.taskId),
  );
}

/**
 * The arrival each upload records, of its last marker in the batch's order, as if the completions
 * were made one after the other: each marker's arrival replaces the one before, and leaves out the
 * files of its upload completed after it.
 */
function markerArrivals(
  completions: readonly Completion[],
  completed: readonly CompletedTask[],
): arrivals.MarkerArrival[] {
  const taskOf = new Map(completed.map((task) => [task.taskId, task]));
  const arrivalOf = new Map<string, arrivals.MarkerArrival>();
  for (const completion of completions) {
    const task = taskOf.get(completion.taskId);
    if (task === undefined) continue;
    if (task.marker) {
      const { uploadId, objectKey: markerKey } = task;
      arrivalOf.set(uploadId, { uploadId, at: completion.now, markerKey, laterFiles: 0, laterBytes: 0 });
      continue;
    }
    const arrival = arrivalOf.get(task.uploadId);
    if (arrival === undefined) continue;
    // The size completed is the size uploaded (see COMPLETE_RUNNING_TASKS).
    arrival.laterFiles += 1;
    arrival.laterBytes += completion.upload.size;
  }
  return [...arrivalOf.values()];
}
