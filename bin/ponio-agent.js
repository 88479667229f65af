#!/usr/bin/env node
// Runs the agent CLI from the TypeScript sources (tsx). The bundled agent (dist/) has its own entry.
import { register } from 'tsx/esm/api';
register();
const { runAgentCli } = await import('../agent/cli.ts');
await runAgentCli(process.argv);
