/** Small helpers: credentials in URLs, append-only logs, where a hot path runs (--device). */
export {
  splitCredentials, maskCredentials,
} from '../util/url.js';
export {
  readAppendLog,
} from '../util/jsonl.js';
export {
  resolveDevice, checkDevice, type Device,
} from '../native/device.js';
