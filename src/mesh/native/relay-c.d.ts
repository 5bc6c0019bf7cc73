// relay.c is bundled into the executable as text (`import … with { type: 'text' }`), see native-relay.ts.
declare module '*.c' {
  const text: string;
  export default text;
}
