/** Process exit codes of `ic`. */
export const EXIT = {
  /** The job succeeded. */
  ok: 0,
  /** The job ran and failed (or found failures). */
  failed: 1,
  /** Bad usage or invalid configuration: nothing ran. */
  usage: 2,
} as const;
