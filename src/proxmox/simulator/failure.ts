// How a simulated API handler fails, mirroring Proxmox: a Perl `die` becomes HTTP 500 with the text as
// message; PVE::Exception raise_param_exc becomes 400 "Parameter verification failed." with `errors`.

export class ApiFailure extends Error {
  readonly status: number;
  readonly errors: Record<string, string> | undefined;
  constructor(status: number, message: string, errors?: Record<string, string>) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

export function die(message: string): never {
  throw new ApiFailure(500, `${message}\n`);
}

export function paramError(errors: Record<string, string>): never {
  throw new ApiFailure(400, "Parameter verification failed.\n", errors);
}
