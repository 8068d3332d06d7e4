#pragma once
/// Sending without an asynchronous operation when the socket can take the bytes at once, which it nearly always
/// can for a response head and body or an upstream request: one sendmsg, and no write operation to allocate,
/// no completion to queue, no coroutine to suspend and resume. The caller writes what is left, if anything,
/// with an asynchronous write as before.
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <cerrno>
#include <cstddef>

namespace llmproxy::server {

/// Sends as much of `buffers` (a ConstBufferSequence of at most 8 buffers used; more are left for the caller)
/// as socket `fd` takes without blocking, whatever the descriptor's own blocking mode (MSG_DONTWAIT), and never
/// raising SIGPIPE. Returns the bytes sent. `ec` is set only on a failure other than "would block" (and EINTR),
/// e.g. a peer that has gone (EPIPE, ECONNRESET) or a socket already closed (EBADF).
template <class ConstBufferSequence>
std::size_t try_send(int fd, const ConstBufferSequence& buffers, boost::system::error_code& ec) {
  ec = {};
  std::array<iovec, 8> iov{};
  std::size_t count = 0;
  for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
       ++it) {
    const boost::asio::const_buffer b(*it);
    if (b.size() == 0) continue;
    if (count == iov.size()) break;
    iov[count].iov_base = const_cast<void*>(b.data());
    iov[count].iov_len = b.size();
    ++count;
  }
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return static_cast<std::size_t>(n);
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    ec = boost::system::error_code(errno, boost::system::system_category());
  }
  return 0;
}

}  // namespace llmproxy::server
