import { DestinationError, isIcError, type IcErrorLike } from '@integration-client/plugin-sdk';

const PERMISSION = new Set(['EACCES', 'EPERM']);
const FULL = new Set(['ENOSPC', 'EDQUOT']);
/**
 * The file system itself is gone or failing: a network share whose server went away or was unmounted uncleanly
 * (ENOTCONN, ESTALE, EHOSTDOWN, ENETDOWN; CIFS answers EIO), a disk that fails (EIO, ENXIO, ENODEV).
 */
const UNREACHABLE = new Set(['ENOTCONN', 'ESTALE', 'EHOSTDOWN', 'ENETDOWN', 'EIO', 'EREMOTEIO', 'ENXIO', 'ENODEV']);

/**
 * Maps a failure while writing `path` to a coded error. What holds for the whole directory — no permission, a
 * read-only file system, a full disk or quota, a share or disk that does not answer — gets a destination-wide code
 * (the kernel then stops the transfer and retries on the next run, rather than trying, and downloading, every other
 * item of the window first). An error the source stream already coded (e.g. the appliance reset the connection) is
 * kept as it is; anything else is a retryable write failure of this item.
 */
export function toDestinationError(err: unknown, path: string): IcErrorLike & Error {
  if (isIcError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = err instanceof Error ? err.message : String(err);
  if (code && PERMISSION.has(code))
    return new DestinationError(
      'IC_ERR_DESTINATION_PERMISSION_DENIED',
      `permission denied writing ${path} (${code}); give the service user write access to the directory`,
      { cause: err, details: { errno: code } },
    );
  if (code === 'EROFS')
    return new DestinationError(
      'IC_ERR_DESTINATION_PERMISSION_DENIED',
      `cannot write ${path}: the file system is read-only (EROFS); mount it read-write`,
      { cause: err, details: { errno: code } },
    );
  if (code && UNREACHABLE.has(code))
    return new DestinationError(
      'IC_ERR_DESTINATION_UNAVAILABLE',
      `cannot write ${path}: the file system does not answer (${code}: a share disconnected, or a failing disk); check the mount — nothing was acknowledged and the next run goes on`,
      { cause: err, details: { errno: code } },
    );
  if (code && FULL.has(code))
    return new DestinationError(
      'IC_ERR_DESTINATION_FULL',
      `the disk holding ${path} is full (${code}); the partial file was removed — free space (or raise the quota) and the next run goes on`,
      { cause: err, details: { errno: code } },
    );
  if (code === 'EFBIG')
    return new DestinationError(
      'IC_ERR_DESTINATION_BAD_ITEM',
      `${path} is larger than this file system allows for one file (EFBIG); the partial file was removed — store such files on another file system`,
      { cause: err, details: { errno: code } },
    );
  if (code === 'ENAMETOOLONG')
    return new DestinationError(
      'IC_ERR_DESTINATION_BAD_ITEM',
      `the file name ${path} is too long for this file system`,
      { cause: err },
    );
  return new DestinationError('IC_ERR_DESTINATION_WRITE_FAILED', `writing ${path} failed: ${text}`, {
    cause: err,
    details: code ? { errno: code } : undefined,
  });
}
