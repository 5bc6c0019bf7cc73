import { describe, expect, test } from 'bun:test';
import { addressOf, type Cidr, contains, firstHost, formatCidr, formatIpv4, lastHost, overlaps, parseCidr, parseIpv4, withPrefix } from './cidr.ts';

const cidr = (s: string) => parseCidr(s) as Cidr;

describe('cidr', () => {
  test('parse and format', () => {
    expect(parseIpv4('10.0.1.5')).toBe(0x0a000105);
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
    for (const bad of ['10.0.1', '256.0.0.1', '1.2.3.04', 'a.b.c.d', '']) expect(parseIpv4(bad)).toBeNull();
    expect(formatCidr(cidr('10.0.1.0/24'))).toBe('10.0.1.0/24');
    expect(parseCidr('10.0.1.0')).toContain('CIDR notation');
    expect(parseCidr('10.0.1.1/24')).toContain('did you mean 10.0.1.0/24');
    expect(parseCidr('10.0.1.0/33')).toContain('prefix length');
    expect(parseCidr('10.0.x.0/24')).toContain('not an IPv4 address');
    expect(cidr('0.0.0.0/0')).toEqual({ base: 0, prefix: 0 });
  });

  test('overlap, containment, hosts', () => {
    expect(overlaps(cidr('10.0.0.0/8'), cidr('10.2.3.0/24'))).toBe(true);
    expect(overlaps(cidr('10.0.1.0/24'), cidr('10.0.2.0/24'))).toBe(false);
    expect(overlaps(cidr('10.0.1.0/24'), cidr('10.0.1.128/25'))).toBe(true);
    const c = cidr('10.0.1.0/24');
    expect(contains(c, parseIpv4('10.0.1.255')!)).toBe(true);
    expect(contains(c, parseIpv4('10.0.2.0')!)).toBe(false);
    expect(formatIpv4(firstHost(c))).toBe('10.0.1.1');
    expect(formatIpv4(lastHost(c))).toBe('10.0.1.254');
    expect(withPrefix(firstHost(c) + 4, c)).toBe('10.0.1.5/24');
    expect(addressOf('10.0.1.5/24')).toBe(parseIpv4('10.0.1.5'));
  });
});
