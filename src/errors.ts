/**
 * Typed errors with stable codes (the undici pattern): tests and users match on `code`,
 * never on message text. Hot paths do not throw these per packet: decoders report reasons
 * as numbers; errors are for configuration, files and connections.
 */
export type ColoErrorCode =
  | 'ERR_POOL_EXHAUSTED'
  | 'ERR_POOL_BAD_HANDLE'
  | 'ERR_POOL_CONFIG'
  | 'ERR_FRAME_TOO_LONG'
  | 'ERR_FRAME_BAD_VNET_LEN'
  | 'ERR_FRAME_EMPTY'
  | 'ERR_CAPTURE_FORMAT'
  | 'ERR_CAPTURE_TRUNCATED'
  | 'ERR_CAPTURE_IO'
  | 'ERR_CAPTURE_LINKTYPE'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_CHANNEL_CLOSED'
  | 'ERR_FLOW_REENTRANT'
  | 'ERR_COMPARE_REENTRANT'
  | 'ERR_TAP'
  | 'ERR_TAP_ADDON'
  | 'ERR_QMP'
  | 'ERR_QMP_DISCONNECTED'
  | 'ERR_QMP_TIMEOUT'
  | 'ERR_QMP_PROTOCOL'
  | 'ERR_QEMU'
  | 'ERR_TIMEOUT';

export class ColoError extends Error {
  readonly code: ColoErrorCode;
  constructor(code: ColoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ColoError';
  }
}

/** A capture file could not be read past some point; `offset` is the byte offset in the file. */
export class CaptureError extends ColoError {
  readonly file: string;
  readonly offset: number;
  constructor(code: ColoErrorCode, file: string, offset: number, message: string, options?: { cause?: unknown }) {
    super(code, `${file}: at byte offset ${offset}: ${message}`, options);
    this.name = 'CaptureError';
    this.file = file;
    this.offset = offset;
  }
}

/** A framed stream (QEMU chardev protocol) carried a value we refuse; `value` is the offending number. */
export class FramingError extends ColoError {
  readonly value: number;
  /** Byte offset in the connection's stream where the bad frame header started. */
  readonly streamOffset: number;
  constructor(code: ColoErrorCode, value: number, streamOffset: number, message: string) {
    super(code, message);
    this.name = 'FramingError';
    this.value = value;
    this.streamOffset = streamOffset;
  }
}
