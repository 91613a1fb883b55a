// The rules of a notify_url, the NOTIFY_ALLOWED_HOSTS setting, and the redacted form of a URL that
// logs and answers show.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_NOTIFY_URL_LENGTH,
  notifyUrlProblem,
  parseAllowedHosts,
  redactNotifyUrl,
} from '../../src/arrival/notify-url.js';

describe('notifyUrlProblem', () => {
  it('accepts absolute http and https URLs when any host is allowed', () => {
    for (const url of [
      'https://hooks.example.org/arrivals',
      'http://127.0.0.1:8080/x?token=abc',
      'https://user:pass@hooks.example.org/',
      'http://[::1]:9000/',
    ]) {
      assert.equal(notifyUrlProblem(url, null), null, url);
    }
  });

  it('refuses what is not an absolute URL, without quoting it', () => {
    for (const url of ['', 'hooks.zz.org/x', '/zz/x', 'https://', 'http://zz.org:99999/', 'http://[zz]/']) {
      const problem = notifyUrlProblem(url, null);
      assert.match(problem ?? '', /must be an absolute URL/, url);
      assert.ok(!problem?.includes('zz'), problem ?? '');
    }
  });

  it('refuses schemes other than http and https', () => {
    for (const url of ['ftp://h/x', 'file:///etc/passwd', 'javascript:alert(1)', 'ws://h/', 'mailto:a@b']) {
      assert.match(notifyUrlProblem(url, null) ?? '', /http:\/\/ or https:\/\//, url);
    }
  });

  it('refuses control characters and spaces, which the parser would drop', () => {
    assert.ok(notifyUrlProblem('https://h/a\tb', null));
    assert.ok(notifyUrlProblem(' https://h/', null));
    assert.ok(notifyUrlProblem('https://h/\n', null));
  });

  it('refuses a fragment, which is never sent', () => {
    assert.match(notifyUrlProblem('https://h/x#secret', null) ?? '', /fragment/);
    assert.match(notifyUrlProblem('https://h/x#', null) ?? '', /fragment/);
  });

  it(`takes up to ${MAX_NOTIFY_URL_LENGTH} characters`, () => {
    const base = 'https://hooks.example.org/';
    const longest = base + 'a'.repeat(MAX_NOTIFY_URL_LENGTH - base.length);
    assert.equal(notifyUrlProblem(longest, null), null);
    assert.match(notifyUrlProblem(`${longest}a`, null) ?? '', /at most 2048 characters.*2049/);
  });

  describe('with allowed hosts', () => {
    const allowed = ['hooks.example.org', '*.corp.example', 'api.example.net:8443', '[::1]:9000', '10.0.0.7'];
    const accepts = (url: string, hosts: readonly string[] = allowed) =>
      assert.equal(notifyUrlProblem(url, hosts), null, url);
    const refuses = (url: string, hosts: readonly string[] = allowed) => {
      const problem = notifyUrlProblem(url, hosts);
      assert.ok(problem, `${url} should be refused`);
      return problem;
    };

    it('matches a host name whatever its case, on any port', () => {
      accepts('https://hooks.example.org/a');
      accepts('https://HOOKS.Example.ORG/a');
      accepts('http://hooks.example.org:8080/a');
      accepts('https://hooks.example.org./a');
      accepts('https://hooks.example.org/', ['Hooks.EXAMPLE.org']);
      refuses('https://hooks.example.org.evil.com/');
      refuses('https://evilhooks.example.org/');
      refuses('https://sub.hooks.example.org/');
    });

    it('matches any subdomain of a wildcard, not the domain itself', () => {
      accepts('https://a.corp.example/');
      accepts('https://a.b.corp.example/');
      refuses('https://corp.example/');
      refuses('https://evilcorp.example/');
      refuses('https://corp.example.evil.com/');
    });

    it('matches host and port for a host:port entry, the default port included', () => {
      accepts('https://api.example.net:8443/');
      refuses('https://api.example.net/');
      refuses('https://api.example.net:8444/');
      accepts('https://api.example.net/', ['api.example.net:443']);
      accepts('http://api.example.net/', ['api.example.net:80']);
      refuses('http://api.example.net/', ['api.example.net:443']);
    });

    it('matches IPv6 literals in brackets, and IPv4 addresses', () => {
      accepts('http://[::1]:9000/');
      accepts('http://[0:0:0:0:0:0:0:1]:9000/');
      refuses('http://[::1]:9001/');
      refuses('http://[::2]:9000/');
      accepts('http://10.0.0.7/x');
      refuses('http://10.0.0.8/x');
      accepts('http://[2001:db8::1]/', ['2001:db8::1']);
    });

    it('names the allowed hosts and the host refused', () => {
      assert.equal(
        refuses('https://evil.example.com:4443/x?token=abc'),
        "notify_url's host evil.example.com:4443 is not allowed by NOTIFY_ALLOWED_HOSTS (allowed: hooks.example.org, *.corp.example, api.example.net:8443, [::1]:9000, 10.0.0.7)",
      );
    });

    it('still checks the URL itself first', () => {
      assert.match(refuses('ftp://hooks.example.org/'), /http:\/\/ or https:\/\//);
    });

    it('allows nothing with an empty list', () => {
      assert.match(refuses('https://hooks.example.org/', []), /allowed: none/);
    });
  });
});

describe('parseAllowedHosts', () => {
  it('reads unset or empty as any host', () => {
    assert.equal(parseAllowedHosts(undefined), null);
    assert.equal(parseAllowedHosts(''), null);
    assert.equal(parseAllowedHosts(' , ,'), null);
  });

  it('splits at commas, trims, and normalises each entry', () => {
    assert.deepEqual(
      parseAllowedHosts(
        ' Hooks.Example.org , *.CORP.example,api.example.net:08443,[::0:1]:9000, 2001:db8::1,bücher.de',
      ),
      [
        'hooks.example.org',
        '*.corp.example',
        'api.example.net:8443',
        '[::1]:9000',
        '[2001:db8::1]',
        'xn--bcher-kva.de',
      ],
    );
  });

  it('gives entries that match as they were written', () => {
    const hosts = parseAllowedHosts('*.Example.org,[::1]:9000');
    assert.equal(notifyUrlProblem('https://a.example.org/', hosts), null);
    assert.equal(notifyUrlProblem('http://[::1]:9000/', hosts), null);
  });

  it('refuses an entry that is not a host, naming it', () => {
    for (const [value, reason] of [
      ['https://hooks.example.org', /'https:\/\/hooks.example.org' is not a host/],
      ['hooks.example.org/path', /not a host/],
      ['user@hooks.example.org', /not a host/],
      ['a.org, *', /'\*'/],
      ['a.*.org', /may only begin/],
      ['*example.org', /may only begin/],
      ['hooks.example.org:0', /port/],
      ['hooks.example.org:70000', /port/],
      ['hooks.example.org:', /port/],
      ['hooks.example.org:http', /port/],
      ['[::1', /closing/],
      ['[::1]x', /':port'/],
      ['2001:db8::1:8443x', /brackets/],
      ['*.10.0.0.1', /IP address/],
      ['*.[::1]', /IP address/],
      ['exa_mple!.org%zz', /not a valid host/],
    ] as const) {
      assert.throws(
        () => parseAllowedHosts(value),
        (error: unknown) =>
          error instanceof Error &&
          error.message.startsWith('NOTIFY_ALLOWED_HOSTS: ') &&
          reason.test(error.message),
        value,
      );
    }
  });
});

describe('redactNotifyUrl', () => {
  it('replaces the password and every query value, and keeps the rest', () => {
    assert.equal(
      redactNotifyUrl('https://alice:s3cr3t@hooks.example.org:8443/runs/arrived?token=abc&sig=d%20ef&mode=x'),
      'https://alice:***@hooks.example.org:8443/runs/arrived?token=***&sig=***&mode=***',
    );
  });

  it('replaces a user name alone, often a token', () => {
    assert.equal(
      redactNotifyUrl('https://ghp_abcdef@hooks.example.org/x'),
      'https://***@hooks.example.org/x',
    );
  });

  it('replaces a parameter without a value whole, and a fragment', () => {
    assert.equal(redactNotifyUrl('https://h/x?k3y&a=&b=1#frag'), 'https://h/x?***&a=***&b=***#***');
  });

  it('keeps a URL without secrets as it is', () => {
    assert.equal(redactNotifyUrl('https://hooks.example.org/a/b'), 'https://hooks.example.org/a/b');
    assert.equal(redactNotifyUrl('http://[::1]:9000/'), 'http://[::1]:9000/');
  });

  it('lets no secret through', () => {
    const secrets = ['pa55word', 'tok3n', 'sig4ture', 'bar3', 'fr4g'];
    const redacted = redactNotifyUrl(
      'https://me:pa55word@h.example/p?a=tok3n&b=sig4ture&tok3n&x=1=bar3&=bar3#fr4g',
    );
    for (const secret of secrets) assert.ok(!redacted.includes(secret), `${secret} in ${redacted}`);
    assert.match(redacted, /a=\*\*\*&b=\*\*\*/);
  });

  it('shows no part of what is not a URL', () => {
    assert.equal(redactNotifyUrl('not a url with secret'), '[not a URL]');
    assert.equal(redactNotifyUrl('mailto:secret@example.org'), 'mailto:***');
  });
});
