/**
 * Tiny network probes run inside a namespace (`bun probe.ts …`; probes.ts drives them), one line of
 * output per event:
 *   tcp-echo IP PORT            listen; print "listening"; echo back every byte
 *   tcp-ask IP PORT BOUND_MS    connect, send "ping", exit 0 when it comes back, 1 on error or after BOUND_MS
 *   tcp-say IP PORT TEXT BOUND_MS  connect, send TEXT, print the first reply as it is and exit 0; 1 on
 *                               error or after BOUND_MS
 *   udp-listen IP PORT          print "listening", then each datagram's text on its own line
 *   udp-send IP PORT TEXT...    send each TEXT as one datagram, in order
 */
export {};

const [mode, ip, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);

switch (mode) {
  case 'tcp-echo': {
    Bun.listen({ hostname: ip!, port, socket: { data: (s, d) => void s.write(d) } });
    console.log('listening');
    break;
  }
  case 'tcp-ask': {
    const boundMs = Number(rest[0] ?? 1000);
    setTimeout(() => process.exit(1), boundMs);
    let got = '';
    await Bun.connect({
      hostname: ip!,
      port,
      socket: {
        open: (s) => void s.write('ping'),
        data: (_s, d) => {
          got += d.toString();
          if (got === 'ping') process.exit(0);
        },
        error: () => process.exit(1),
        connectError: () => process.exit(1),
      },
    }).catch(() => process.exit(1));
    break;
  }
  case 'tcp-say': {
    setTimeout(() => process.exit(1), Number(rest[1] ?? 3000));
    await Bun.connect({
      hostname: ip!,
      port,
      socket: {
        open: (s) => void s.write(rest[0] ?? ''),
        data: (_s, d) => {
          process.stdout.write(d.toString());
          process.exit(0);
        },
        error: () => process.exit(1),
        connectError: () => process.exit(1),
      },
    }).catch(() => process.exit(1));
    break;
  }
  case 'udp-listen': {
    await Bun.udpSocket({ hostname: ip!, port, socket: { data: (_s, buf) => console.log(buf.toString()) } });
    console.log('listening');
    break;
  }
  case 'udp-send': {
    const s = await Bun.udpSocket({});
    for (const text of rest) s.send(text, port, ip!);
    s.close();
    break;
  }
  default:
    console.error(`probe: unknown mode ${mode}`);
    process.exit(2);
}
