import { unavailable, type AgentModule, type HandlersOf, type ModuleContext } from '../types.ts';

// Placeholder until the ftp module lands: reports itself unavailable, so the router answers
// `unsupported` with this reason and never calls a handler.
export function createFtpModule(_ctx: ModuleContext): AgentModule<'ftp'> {
  return {
    name: 'ftp',
    availability: () => unavailable('The ftp module is not built yet.'),
    handlers: {} as HandlersOf<'ftp'>,
  };
}
