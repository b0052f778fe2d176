/** The command being run (`site add`, `service run`, …), set by the CLI before its action; logged on open. */
export const current = { command: '' };
