// Completing files, a group commit's worth in one transaction and a few statements: a completed
// task never keeps a multipart upload that would look resumable, nor its upload an error about it,
// nor the listing an object its own record now describes.
import type { CompletedUpload, EpochMs } from '../../domain/model.js';
import type { Queryable } from './connection.js';
import * as existing from './existing-objects.js';
import * as multipart from './multipart.js';
import * as tasks from './tasks.js';
import * as uploads from './uploads.js';

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
  }
  return completions.map(
    (completion, index) => firstIndexOf.get(completion.taskId) === index && done.has(completion.taskId),
  );
}
