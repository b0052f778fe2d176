import { DestinationError, isIcError, type IcErrorLike } from '@integration-client/plugin-sdk';

const PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);
const FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * Maps a failure while writing `path` to a coded error: permission problems are not retryable, a full disk is
 * (space may be freed), an error the source stream already coded (e.g. the appliance reset the connection) is
 * kept as it is, anything else is a retryable write failure.
 */
export function toDestinationError(err: unknown, path: string): IcErrorLike & Error {
  if (isIcError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = err instanceof Error ? err.message : String(err);
  if (code && PERMISSION.has(code)) {
    return new DestinationError(
      'IC_ERR_DESTINATION_PERMISSION_DENIED',
      `permission denied writing ${path} (${code}); give the service user write access to the directory`,
      { cause: err },
    );
  }
  if (code && FULL.has(code)) {
    return new DestinationError(
      'IC_ERR_DESTINATION_WRITE_FAILED',
      `the disk holding ${path} is full (${code}); the partial file was removed, free space and the item is retried`,
      {
        cause: err,
        details: { errno: code },
      },
    );
  }
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
