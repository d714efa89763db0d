/** Small helpers: credentials in URLs, append-only logs. */
export {
  splitCredentials, maskCredentials,
} from '../util/url.js';
export {
  readAppendLog,
} from '../util/jsonl.js';
