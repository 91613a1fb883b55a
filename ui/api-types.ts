// The API's shapes as the typed client generated from the served OpenAPI document declares them
// (npm run generate:api-client; a test fails when that file and the document differ). Taking them
// from there rather than writing them again means `tsc -p tsconfig.ui.json` fails as soon as a field
// the dashboard reads changes. Types only: nothing of that file reaches the bundle.
import type { components, operations } from '../src/api/openapi-types.js';

type Schemas = components['schemas'];

export type UploadSummary = Schemas['UploadSummary'];
export type UploadDetails = Schemas['UploadDetails'];
/** The answer to POST /uploads: the upload, and what could not be checked. */
export type CreatedUpload = Schemas['CreatedUpload'];
export type UploadPhase = Schemas['UploadProgress']['phase'];
export type Scan = Schemas['Scan'];
export type ObjectProperties = Schemas['ObjectProperties'];
export type FileTask = Schemas['FileTask'];
export type TaskStatus = FileTask['status'];
export type FilePage = Schemas['FilePage'];
export type RetryResult = Schemas['RetryResult'];
export type RescanResult = Schemas['RescanResult'];
export type VerifyResult = Schemas['VerifyResult'];
export type Health = Schemas['Health'];
export type Instance = Schemas['Instance'];
export type Settings = Schemas['Settings'];
export type ErrorBody = Schemas['Error'];
/** The body of POST /uploads. */
export type CreateUploadBody = operations['createUpload']['requestBody']['content']['application/json'];
/** The body of PATCH /settings. */
export type SettingsChange = NonNullable<
  operations['updateSettings']['requestBody']
>['content']['application/json'];
