/** genaug's public surface. */
export { GenaugError, isGenaugError, ERROR_CODES, type ErrorCode } from './native/errors.js';
export { capabilities, type Capabilities } from './native/load.js';
export * from './kernels/similarity.js';
export { matrix, sliceRows } from './kernels/validate.js';
