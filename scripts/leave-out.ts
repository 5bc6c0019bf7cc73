/**
 * A build plugin (build.ts) that keeps out of dist/shoal the packages dockerode pulls in for what
 * shoal never asks of it: ssh2 (docker-modem's `ssh://` engine addresses, with two native addons)
 * and gRPC + protobuf (dockerode's BuildKit session for `docker build`). docker-modem and dockerode
 * require them at the top of a module, so marking them external would break loading dockerode;
 * instead each becomes a stub whose every export throws, naming the package, when used.
 * Together they were ~1.4 MB of the bundle's 5 MB of JavaScript, ~3.8 MB of the executable with
 * their bytecode, and ~10 MiB of a daemon's RSS once the container executor loads dockerode.
 */
import type { BunPlugin } from 'bun';

export const LEFT_OUT = ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'] as const;

const filter = new RegExp(`^(${LEFT_OUT.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);

/** The stub's source: property reads give a function that throws (dockerode reads `.Client` etc. at load). */
export function stubSource(pkg: string): string {
  const message = `${pkg} is left out of the shoal executable (scripts/leave-out.ts): ssh:// engine addresses and docker build sessions are not supported`;
  // A function, not an arrow: `new ssh2.Client()` must reach the throw too.
  return `function fail() { throw new Error(${JSON.stringify(message)}); }\n` +
    `module.exports = new Proxy(fail, { get: (_, key) => (key === '__esModule' ? false : fail) });\n`;
}

export const leaveOut: BunPlugin = {
  name: 'shoal-leave-out',
  setup(build) {
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'shoal-left-out' }));
    build.onLoad({ filter: /.*/, namespace: 'shoal-left-out' }, (args) => ({ loader: 'js', contents: stubSource(args.path) }));
  },
};
