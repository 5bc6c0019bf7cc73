/**
 * A build plugin (build.ts) that keeps out of dist/shoal the packages dockerode pulls in for what
 * shoal never asks of it: ssh2 (docker-modem's `ssh://` engine addresses, with two native addons)
 * and gRPC + protobuf (dockerode's BuildKit session for `docker build`). docker-modem and dockerode
 * require them at the top of a module, so marking them external would break loading dockerode;
 * instead each becomes a stub whose every export throws, naming the package, when used.
 * Together they were ~1.4 MB of the bundle's 5 MB of JavaScript, ~3.8 MB of the executable with
 * their bytecode, and ~10 MiB of a daemon's RSS once the container executor loads dockerode.
 *
 * msgpackr-extract (msgpackr's optional native string decoder) is left out as well, with a stub
 * that throws when it is required, as a missing optional package does: msgpackr requires it inside
 * a try and falls back to its JavaScript decoder. Bundled, its loader looked for the addon under the
 * build machine's node_modules path, so an executable run on the machine that built it loaded
 * that .node file (with libstdc++, ~5 MiB of RSS) while one run anywhere else did not.
 */
import type { BunPlugin } from 'bun';

export const LEFT_OUT = ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'] as const;
/** Optional packages, required inside a try: their stub throws at load, as a missing package would. */
export const ABSENT = ['msgpackr-extract'] as const;

const filter = new RegExp(`^(${[...LEFT_OUT, ...ABSENT].map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);

/** The stub's source: property reads give a function that throws (dockerode reads `.Client` etc. at load). */
export function stubSource(pkg: string): string {
  const message = `${pkg} is left out of the shoal executable (scripts/leave-out.ts): ssh:// engine addresses and docker build sessions are not supported`;
  // A function, not an arrow: `new ssh2.Client()` must reach the throw too.
  return `function fail() { throw new Error(${JSON.stringify(message)}); }\n` +
    `module.exports = new Proxy(fail, { get: (_, key) => (key === '__esModule' ? false : fail) });\n`;
}

/** An absent optional package: requiring it throws, naming it. */
export function absentSource(pkg: string): string {
  return `throw new Error(${JSON.stringify(`${pkg} is left out of the shoal executable (scripts/leave-out.ts)`)});\n`;
}

export const leaveOut: BunPlugin = {
  name: 'shoal-leave-out',
  setup(build) {
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'shoal-left-out' }));
    build.onLoad({ filter: /.*/, namespace: 'shoal-left-out' }, (args) => ({
      loader: 'js',
      contents: (ABSENT as readonly string[]).includes(args.path) ? absentSource(args.path) : stubSource(args.path),
    }));
  },
};
