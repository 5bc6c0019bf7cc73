// install.sh is bundled into the executable as text (`import … with { type: 'text' }`), see fleet-http.ts.
declare module '*.sh' {
  const text: string;
  export default text;
}
