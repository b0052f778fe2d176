/**
 * The storage schema, once, for every engine: the seed's eight tables with its column names, plus one table
 * (`session_extra`) for what the model carries and the seed's tables cannot hold. dialects.ts turns this into
 * DDL per engine; rows.ts fills it from a session model.
 */

/**
 * Column kinds. `id` auto-increments; `ref` points at another table's id; `key` is a bounded string that takes
 * part in a key or index; `short` a bounded string; `text` unbounded; `flag` 1/0; `time` a UTC instant.
 */
export type ColumnKind = 'id' | 'ref' | 'key' | 'short' | 'text' | 'int' | 'bigint' | 'flag' | 'time';

/** Length limit of `key` and `short` columns, in characters, on every engine. */
export const SHORT_LENGTH = 255;

export interface Column {
  readonly name: string;
  readonly kind: ColumnKind;
  /** NOT NULL. */
  readonly required?: boolean;
  /** For `ref`: the referenced table. */
  readonly references?: TableName;
}

export interface Table {
  readonly name: TableName;
  readonly columns: readonly Column[];
  /** Unique keys, by column names. */
  readonly unique?: readonly (readonly string[])[];
  /** Plain indexes, by column names. */
  readonly indexes?: readonly (readonly string[])[];
}

export type TableName =
  | 'session'
  | 'session_event'
  | 'session_event_data'
  | 'system_information'
  | 'representative'
  | 'customer'
  | 'team'
  | 'custom_attribute'
  | 'session_extra';

const id: Column = { name: 'id', kind: 'id', required: true };
const sessionRef: Column = { name: 'session_id', kind: 'ref', required: true, references: 'session' };
const eventRef: Column = { name: 'session_event_id', kind: 'ref', required: true, references: 'session_event' };

/** Every table in creation order (parents first). */
export const TABLES: readonly Table[] = [
  {
    name: 'session',
    columns: [
      id,
      { name: 'lsid', kind: 'key', required: true },
      { name: 'type', kind: 'short' },
      { name: 'start_time', kind: 'time' },
      { name: 'end_time', kind: 'time' },
      { name: 'duration', kind: 'short' },
      { name: 'file_transfers', kind: 'int' },
      { name: 'host_name', kind: 'key', required: true },
      { name: 'external_key', kind: 'text' },
      { name: 'public_site_id', kind: 'int' },
      { name: 'public_site_name', kind: 'short' },
      { name: 'lseq', kind: 'bigint' },
      { name: 'jump_group_id', kind: 'bigint' },
      { name: 'jump_group_name', kind: 'short' },
      { name: 'jump_group_type', kind: 'short' },
    ],
    unique: [['host_name', 'lsid']],
    indexes: [['start_time'], ['end_time']],
  },
  {
    name: 'session_event',
    columns: [
      id,
      sessionRef,
      { name: 'type', kind: 'short' },
      { name: 'event_time', kind: 'time' },
      { name: 'performed_by', kind: 'text' },
      { name: 'performed_by_type', kind: 'short' },
      { name: 'destination', kind: 'text' },
      { name: 'destination_type', kind: 'short' },
    ],
    indexes: [['session_id'], ['event_time'], ['type']],
  },
  {
    name: 'session_event_data',
    columns: [id, eventRef, { name: 'name', kind: 'short' }, { name: 'value', kind: 'text' }],
    indexes: [['session_event_id']],
  },
  {
    name: 'system_information',
    columns: [id, eventRef, { name: 'category', kind: 'short' }, { name: 'information', kind: 'text' }],
    indexes: [['session_event_id']],
  },
  {
    name: 'representative',
    columns: [
      id,
      { name: 'gs_number', kind: 'bigint' },
      sessionRef,
      { name: 'user_id', kind: 'bigint' },
      { name: 'user_name', kind: 'short' },
      { name: 'display_name', kind: 'text' },
      { name: 'public_display_name', kind: 'text' },
      { name: 'display_number', kind: 'int' },
      { name: 'public_ip', kind: 'short' },
      { name: 'private_ip', kind: 'short' },
      { name: 'is_owner', kind: 'flag' },
      { name: 'is_primary', kind: 'flag' },
      { name: 'duration', kind: 'int' },
      { name: 'host_name', kind: 'text' },
      { name: 'operating_system', kind: 'text' },
    ],
    indexes: [['session_id'], ['user_id']],
  },
  {
    name: 'customer',
    columns: [
      id,
      sessionRef,
      { name: 'gs_number', kind: 'bigint' },
      { name: 'issue', kind: 'text' },
      { name: 'issue_description', kind: 'text' },
      { name: 'display_name', kind: 'text' },
      { name: 'company_name', kind: 'text' },
      { name: 'company_code', kind: 'text' },
      { name: 'public_ip', kind: 'short' },
      { name: 'private_ip', kind: 'short' },
      { name: 'rpat_support', kind: 'flag' },
      { name: 'host_name', kind: 'text' },
      { name: 'operating_system', kind: 'text' },
    ],
    indexes: [['session_id']],
  },
  {
    name: 'team',
    columns: [
      id,
      sessionRef,
      { name: 'team_id', kind: 'bigint' },
      { name: 'name', kind: 'text' },
      { name: 'is_primary', kind: 'flag' },
    ],
    indexes: [['session_id'], ['team_id']],
  },
  {
    name: 'custom_attribute',
    columns: [
      id,
      sessionRef,
      { name: 'display_name', kind: 'text' },
      { name: 'code_name', kind: 'short' },
      { name: 'value', kind: 'text' },
    ],
    indexes: [['session_id']],
  },
  {
    name: 'session_extra',
    columns: [id, sessionRef, { name: 'name', kind: 'short', required: true }, { name: 'value', kind: 'text' }],
    indexes: [['session_id']],
  },
];

/** Looks a table up by name. */
export function table(name: TableName): Table {
  const t = TABLES.find((x) => x.name === name);
  if (!t) throw new Error(`no table ${name}`);
  return t;
}

/** The columns a row of `name` supplies (every column but the auto-increment id), in order. */
export function insertColumns(name: TableName): readonly Column[] {
  let cols = INSERT_COLUMNS.get(name);
  if (!cols) INSERT_COLUMNS.set(name, (cols = table(name).columns.filter((c) => c.kind !== 'id')));
  return cols;
}
const INSERT_COLUMNS = new Map<TableName, readonly Column[]>();

/** Tables hanging off `session_event` (deleted before it). */
export const EVENT_CHILDREN: readonly TableName[] = ['session_event_data', 'system_information'];
/** Tables hanging off `session` (deleted before it). */
export const SESSION_CHILDREN: readonly TableName[] = [
  'session_event',
  'representative',
  'customer',
  'team',
  'custom_attribute',
  'session_extra',
];

/** Name of the table that records applied migrations. */
export const MIGRATIONS_TABLE = 'ic_schema_migrations';
