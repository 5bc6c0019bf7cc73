/**
 * The host harness of the multi-host tests (test/integration, test/netns, test/overlay, the chaos
 * suite) and of the benchmarks that run dist/shoal: namespace hosts (hosts.ts) and probes of the network between them (probes.ts), daemons (daemon.ts) and the docker CLI at one (docker-cli.ts),
 * clusters of them (cluster.ts), bounded waits (wait.ts), log tails on failure (logs.ts).
 * docs/testing-netns.md describes it.
 */
export { alive, type CliResult, Daemon, freePort, killTaskProcesses, requireBinary, SHOAL, tempDaemon, tlsDaemon } from './daemon.ts';
export { type AddOptions, type BootOptions, type Booted, Cluster, disposeAll, leaderOf, NETNS_PORT } from './cluster.ts';
export { type NetHost, NetnsHosts, netnsUnavailable, requireNetns, sweepStale, vxlanUnavailable } from './hosts.ts';
export { reaches, tcpEcho, tcpSay, udpListener, udpSend } from './probes.ts';
export { logsOnFailure, logTails } from './logs.ts';
export { waitFor } from './wait.ts';
export { runDocker, type DockerRun } from './docker-cli.ts';
