import { PONIO_VERSION } from '../../../shared/protocol/index.ts';
import { available, type AgentModule, type ModuleContext } from '../types.ts';
import { systemInfo } from './info.ts';

export function createSystemModule(ctx: ModuleContext): AgentModule<'system'> {
  return {
    name: 'system',
    availability: available,
    handlers: {
      ping: () => Promise.resolve({ pong: true, time: Date.now(), agentVersion: PONIO_VERSION }),
      'system info': () => systemInfo(ctx.exec),
    },
  };
}
