/** Generates the TypeScript modules of src/generated: path → file body. */
export function generate(): Promise<Map<string, string>>;
