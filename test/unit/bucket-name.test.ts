import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketNameProblem } from '../../src/domain/bucket-name.js';

describe('bucketNameProblem', () => {
  it('accepts valid names', () => {
    for (const name of [
      'abc',
      'my-bucket',
      'my.bucket.example',
      'docexamplebucket1',
      '1bucket2',
      'a'.repeat(63),
      '192.168.5.4x',
      'bucket-111122223333-us-west-2-an',
      'xn-single-hyphen',
      'mrap-not-suffix',
      'a-b.c-d',
      'a--b.c',
    ]) {
      assert.equal(bucketNameProblem(name), null, name);
    }
  });

  const broken: [name: string, rule: RegExp][] = [
    ['ab', /3 to 63 characters long \(this one has 2\)/],
    ['a'.repeat(64), /3 to 63 characters long \(this one has 64\)/],
    ['', /3 to 63/],
    ['My-Bucket', /lowercase letters, digits, '\.' and '-' \(found 'M'\)/],
    ['my_bucket', /found '_'/],
    ['my bucket', /found ' '/],
    ['bücket', /found 'ü'/],
    ['-bucket', /begin and end with a lowercase letter or a digit/],
    ['bucket-', /begin and end/],
    ['.bucket', /begin and end/],
    ['bucket.', /begin and end/],
    ['my..bucket', /two adjacent periods/],
    ['a.-b', /period next to a hyphen \(found '\.-'\)/],
    ['a-.b', /period next to a hyphen \(found '-\.'\)/],
    ['my-bucket.-example.com', /period next to a hyphen/],
    ['192.168.5.4', /IP address/],
    ['10.0.0.1', /IP address/],
    ['xn--bucket', /start with 'xn--'/],
    ['sthree-bucket', /start with 'sthree-'/],
    ['sthree-configurator', /start with 'sthree-'/],
    ['amzn-s3-demo-bucket', /start with 'amzn-s3-demo-'/],
    ['bucket-s3alias', /end with '-s3alias'/],
    ['bucket--ol-s3', /end with '--ol-s3'/],
    ['bucket.mrap', /end with '\.mrap'/],
    ['bucket--usw2-az1--x-s3', /end with '--x-s3'/],
    ['bucket--table-s3', /end with '--table-s3'/],
  ];
  for (const [name, rule] of broken) {
    it(`rejects '${name.length > 20 ? `${name.slice(0, 10)}…` : name}' saying which rule it breaks`, () => {
      assert.match(bucketNameProblem(name) ?? 'accepted', rule);
    });
  }
});
