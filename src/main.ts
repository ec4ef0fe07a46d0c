#!/usr/bin/env bun
import { runRoles } from './run-roles';

/** Entry point: see runRoles. */
await runRoles();
