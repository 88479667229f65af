import { unavailable, type AgentModule, type HandlersOf, type ModuleContext } from '../types.ts';

// Placeholder until the mysql module lands: reports itself unavailable, so the router answers
// `unsupported` with this reason and never calls a handler.
export function createMysqlModule(_ctx: ModuleContext): AgentModule<'mysql'> {
  return {
    name: 'mysql',
    availability: () => unavailable('The mysql module is not built yet.'),
    handlers: {} as HandlersOf<'mysql'>,
  };
}
