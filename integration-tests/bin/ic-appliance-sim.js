#!/usr/bin/env node
// Runs the built appliance simulator CLI (build first: npm run build).
import '../dist/simulator/cli.js';
