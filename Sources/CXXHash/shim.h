// `-o hash_algorithm=xxh3`: Debian's libxxhash (the same XXH3 memcached bundles).
#include <xxhash.h>
