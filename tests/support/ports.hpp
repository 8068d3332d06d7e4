#pragma once
/// Loopback ports for tests that start servers of their own (every test kind: no Boost, no Catch).
namespace llmproxy::test {

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed). Throws
/// std::system_error when no socket can be made.
int free_port();

}  // namespace llmproxy::test
