#!/usr/bin/env node
// Runs the panel CLI from the TypeScript sources (tsx).
import { register } from 'tsx/esm/api';
register();
const { runPanelCli } = await import('../server/cli.ts');
await runPanelCli(process.argv);
