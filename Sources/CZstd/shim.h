// For `ZSTD_getCParams` and `ZSTD_createCDict_advanced`: a seal's dictionary is digested with
// parameters of the log's choosing (`Zstd.sealParameters`), which the stable API cannot give a
// digested dictionary. Both have been in libzstd, unchanged, since 1.3.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zdict.h>
#include <zstd_errors.h>
