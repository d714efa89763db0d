/* A Node-API module that leaks 4 KiB per call: native/tests/sanitize.sh loads
 * it under LeakSanitizer with native/tests/lsan-node.supp in force and
 * requires every byte of it reported, which shows the suppressions hide only
 * node's own memory, not an addon's. */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

static napi_value Leak(napi_env env, napi_callback_info info) {
  static char* volatile last; /* the pointer escapes, so the allocation is not optimised away */
  char* p = malloc(4096);
  memset(p, 1, 4096);
  last = p;
  last = NULL; /* and is lost */
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "leak", NAPI_AUTO_LENGTH, Leak, NULL, &fn);
  napi_set_named_property(env, exports, "leak", fn);
  return exports;
}
