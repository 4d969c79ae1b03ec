// TCP client plumbing shared by the log shipper (TLS) and the DDoS webhook.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace palisade {

// poll() on one descriptor, retried on EINTR: 1 ready, 0 timed out, -1 error.
int pollFor(int fd, short events, int timeout_ms);

// A TCP connection to host:port (a name or an address), the first of its
// addresses that accepts within timeout_ms. The descriptor is non-blocking
// and close-on-exec; the caller closes it. Errors: "HOST: why" when the name
// does not resolve, "connect to HOST:PORT: why" otherwise.
Result<int> connectTcp(const std::string& host, uint16_t port, int timeout_ms);

}  // namespace palisade
