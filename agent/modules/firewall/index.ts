import { unavailable, type AgentModule, type HandlersOf, type ModuleContext } from '../types.ts';

// Placeholder until the firewall module lands: reports itself unavailable, so the router answers
// `unsupported` with this reason and never calls a handler.
export function createFirewallModule(_ctx: ModuleContext): AgentModule<'firewall'> {
  return {
    name: 'firewall',
    availability: () => unavailable('The firewall module is not built yet.'),
    handlers: {} as HandlersOf<'firewall'>,
  };
}
