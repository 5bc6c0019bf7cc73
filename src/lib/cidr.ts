/**
 * IPv4 prefixes as numbers: parsing with messages a user can act on, overlap, and host addresses.
 * Overlay networks are IPv4 only (as Swarm's default address pools are).
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit number (host bits zero). */
  base: number;
  prefix: number;
}

export function parseIpv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255 || (m[i]!.length > 1 && m[i]![0] === '0')) return null;
    n = n * 256 + o;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `10.0.1.0/24` → Cidr, or a message saying what is wrong with it. Host bits must be zero. */
export function parseCidr(s: string): Cidr | string {
  const slash = s.indexOf('/');
  if (slash < 0) return `"${s}" is not in CIDR notation (expected e.g. 10.0.1.0/24)`;
  const ip = parseIpv4(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (ip === null) return `"${s}": "${s.slice(0, slash)}" is not an IPv4 address`;
  if (!/^\d{1,2}$/.test(p) || Number(p) > 32) return `"${s}": the prefix length must be 0-32`;
  const prefix = Number(p);
  const base = (ip & maskOf(prefix)) >>> 0;
  if (base !== ip) return `"${s}" has host bits set: did you mean ${formatIpv4(base)}/${prefix}?`;
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefix)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

/** Usable host addresses (not the network or broadcast address), in order. */
export function firstHost(c: Cidr): number {
  return c.base + 1;
}
export function lastHost(c: Cidr): number {
  return c.base + size(c) - 2;
}

/** `10.0.1.5/24`: an address with its network's prefix, Docker's form for task addresses and VIPs. */
export function withPrefix(ip: number, c: Cidr): string {
  return `${formatIpv4(ip)}/${c.prefix}`;
}

/** The address part of `10.0.1.5/24` as a number, or null. */
export function addressOf(s: string): number | null {
  const slash = s.indexOf('/');
  return parseIpv4(slash < 0 ? s : s.slice(0, slash));
}
