import type { ErrorCode } from '../../shared/protocol/index.ts';

export type PanelErrorCode = ErrorCode | 'unauthenticated' | 'permission-denied' | 'rate-limited' | 'csrf';

/** An error a route throws for the API/dashboard to render ({ error: { code, message } } in the API). */
export class PanelHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: PanelErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PanelHttpError';
  }
}

/** HTTP status for an RPC error code (design: 400 invalid, 404, 409, 502 unavailable, 504 timeout). */
export function statusForCode(code: PanelErrorCode): number {
  switch (code) {
    case 'invalid-argument':
      return 400;
    case 'unauthenticated':
      return 401;
    case 'permission-denied':
    case 'csrf':
      return 403;
    case 'not-found':
      return 404;
    case 'already-exists':
    case 'failed-precondition':
      return 409;
    case 'rate-limited':
      return 429;
    case 'unsupported':
      return 501;
    case 'unavailable':
      return 502;
    case 'timeout':
      return 504;
    case 'internal':
      return 500;
  }
}
