import { ConflictError, InvalidArgumentError } from '../lib/errors.ts';

/** A published port could not be bound on this host (in use, or the address is not ours). */
export class PortUnavailableError extends ConflictError {}

/** A port, address or option given to the mesh is out of range. */
export class MeshConfigError extends InvalidArgumentError {}
