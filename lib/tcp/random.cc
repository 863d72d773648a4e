#include "tcp/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace tcpterm::tcp {

void random_bytes(void* p, size_t n) {
  auto* b = static_cast<unsigned char*>(p);
  while (n) {
    ssize_t got = getrandom(b, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "tcpterm: getrandom failed (errno %d): refusing to run with guessable secrets\n", errno);
      std::abort();
    }
    b += got;
    n -= size_t(got);
  }
}

uint64_t random_u64() {
  uint64_t v;
  random_bytes(&v, sizeof v);
  return v;
}

}  // namespace tcpterm::tcp
