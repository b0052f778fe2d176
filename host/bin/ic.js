#!/usr/bin/env node
// Runs the built ic CLI (build first: npm run build).
import '../dist/cli.js';
