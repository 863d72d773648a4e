// Secrets from the operating system's random source (getrandom(2)).
//
// Every secret tcpterm keys a hash with -- the RFC 6528 ISS key, the RFC 4987
// SYN-cookie secrets, the RFC 7323 7.1 per-connection timestamp offsets and
// the flow-table hash seed -- is drawn here, never compiled in.  A failure of
// the random source is fatal: an appliance with guessable secrets must not
// start.  (A syscall, not I/O on the data path: it is called at start-up and
// once per SYN-cookie period.)
#pragma once
#include <cstddef>
#include <cstdint>

namespace tcpterm::tcp {

// Fills p[0..n) from getrandom(2) (blocking until the kernel pool is
// initialised, retrying on EINTR); aborts the process if it cannot.
void random_bytes(void* p, size_t n);
uint64_t random_u64();

// A source of secrets; tests pass a deterministic one.
using RandomFn = void (*)(void* p, size_t n);

}  // namespace tcpterm::tcp
