import { unavailable, type AgentModule, type HandlersOf, type ModuleContext } from '../types.ts';

// Placeholder until the websites module lands: reports itself unavailable, so the router answers
// `unsupported` with this reason and never calls a handler.
export function createWebsitesModule(_ctx: ModuleContext): AgentModule<'websites'> {
  return {
    name: 'websites',
    availability: () => unavailable('The websites module is not built yet.'),
    handlers: {} as HandlersOf<'websites'>,
  };
}
