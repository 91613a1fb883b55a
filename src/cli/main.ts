// The CLI's entry: `s3-folder-uploader <command>` (bin/s3-folder-uploader.js runs it). A client of
// the service's HTTP API only: nothing of the engine, store or transfer is loaded here.
import { Output } from './output.js';
import { runCli } from './program.js';

runCli(process.argv, { out: new Output(process.stdout), err: process.stderr }).then((code) => {
  // exitCode rather than exit(): what is still buffered for a pipe is written before the end.
  process.exitCode = code;
});
