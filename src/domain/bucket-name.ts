// S3's naming rules for general purpose buckets, checked before a request is accepted so that a
// typo is reported at once rather than as a failed upload later. Rules as documented by AWS in
// "General purpose bucket naming rules". Not enforced: names ending in '-an' (account regional
// namespace buckets are valid targets), Transfer Acceleration's no-dots rule, and the legacy
// us-east-1 names with capitals or underscores, which S3 no longer lets anyone create.

const MIN_LENGTH = 3;
const MAX_LENGTH = 63;
const RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];

/** null when the name follows the rules; otherwise which rule it breaks. */
export function bucketNameProblem(name: string): string | null {
  if (name.length < MIN_LENGTH || name.length > MAX_LENGTH) {
    return `a bucket name must be ${MIN_LENGTH} to ${MAX_LENGTH} characters long (this one has ${name.length})`;
  }
  const invalid = /[^a-z0-9.-]/.exec(name);
  if (invalid) {
    return `a bucket name may only contain lowercase letters, digits, '.' and '-' (found '${invalid[0]}')`;
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) {
    return 'a bucket name must begin and end with a lowercase letter or a digit';
  }
  if (name.includes('..')) return 'a bucket name must not contain two adjacent periods';
  // Each dot-separated label must be a DNS label, which cannot begin or end with a hyphen. No
  // longer listed in the rules, but S3 still refuses such names (InvalidBucketName).
  const dashDot = /\.-|-\./.exec(name);
  if (dashDot) return `a bucket name must not have a period next to a hyphen (found '${dashDot[0]}')`;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) {
    return 'a bucket name must not be formatted as an IP address';
  }
  const prefix = RESERVED_PREFIXES.find((reserved) => name.startsWith(reserved));
  if (prefix) return `a bucket name must not start with '${prefix}', which S3 reserves`;
  const suffix = RESERVED_SUFFIXES.find((reserved) => name.endsWith(reserved));
  if (suffix) return `a bucket name must not end with '${suffix}', which S3 reserves`;
  return null;
}
