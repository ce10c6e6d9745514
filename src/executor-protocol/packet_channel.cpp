#include "packet_channel.hpp"

#include "error.hpp"

#include <cerrno>
#include <memory>
#include <poll.h>
#include <span>
#include <sys/socket.h>
#include <sys/uio.h>

namespace overlay::protocol {

namespace {

// Below the default socket buffer (about 208 KiB), so one packet always
// fits and a send never fails with EMSGSIZE.
constexpr std::size_t kPacketPayload = 60 * 1024;
constexpr char kMore = '+';
constexpr char kLast = '.';

// 1: readable, 0: timed out.
int wait_readable(int fd, std::optional<std::chrono::milliseconds> timeout) {
    pollfd pfd{fd, POLLIN, 0};
    const int ms = timeout ? static_cast<int>(timeout->count()) : -1;
    for (;;) {
        const int ready = ::poll(&pfd, 1, ms);
        if (ready >= 0) {
            return ready;
        }
        if (errno != EINTR) {
            throw_errno(ErrorCode::Failed, "poll on the executor socket", errno);
        }
    }
}

} // namespace

bool send_message(int fd, std::string_view message) {
    if (message.size() > kMaxMessage) {
        throw Error(ErrorCode::Failed, "message of " + std::to_string(message.size()) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(kMaxMessage));
    }
    do {
        const std::size_t n = std::min(message.size(), kPacketPayload);
        // The framing byte and the payload gathered by the kernel: no copy.
        char mark = n == message.size() ? kLast : kMore;
        iovec parts[2] = {{&mark, 1}, {const_cast<char*>(message.data()), n}};
        msghdr packet{};
        packet.msg_iov = parts;
        packet.msg_iovlen = 2;
        message.remove_prefix(n);
        for (;;) {
            const ssize_t sent = ::sendmsg(fd, &packet, MSG_NOSIGNAL);
            if (sent >= 0) {
                break;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno == EPIPE || errno == ECONNRESET) {
                return false;
            }
            throw_errno(ErrorCode::Failed, "send on the executor socket", errno);
        }
    } while (!message.empty());
    return true;
}

Received receive_message(int fd, std::optional<std::chrono::milliseconds> timeout) {
    Received out;
    // One buffer per thread for its life, never zero-filled: a vector made
    // per message value-initialized 60 KiB three or four times per call in
    // the daemon alone (the executor's answer, the watcher's reports and
    // its answer to a sync), and its pages were given back and faulted in
    // again. recv() writes only the packet's bytes, the only ones read.
    thread_local const std::unique_ptr<char[]> packet(new char[kPacketPayload + 1]);
    const std::span<char> buf(packet.get(), kPacketPayload + 1);
    for (;;) {
        if (wait_readable(fd, timeout) == 0) {
            out.status = ReceiveStatus::TimedOut;
            out.message.clear();
            return out;
        }
        // MSG_TRUNC: the real length of a packet larger than the buffer, so
        // an oversized one is caught rather than silently cut.
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            if (errno == ECONNRESET) {
                out.status = ReceiveStatus::Closed;
                return out;
            }
            throw_errno(ErrorCode::Failed, "recv on the executor socket", errno);
        }
        if (n == 0) {
            out.status = ReceiveStatus::Closed;
            out.message.clear();
            return out;
        }
        if (static_cast<std::size_t>(n) > buf.size()) {
            throw Error(ErrorCode::Failed,
                        "executor sent a packet of " + std::to_string(n) + " bytes");
        }
        if (buf[0] != kMore && buf[0] != kLast) {
            throw Error(ErrorCode::Failed, "executor sent a packet without a framing byte");
        }
        if (out.message.size() + static_cast<std::size_t>(n) - 1 > kMaxMessage) {
            throw Error(ErrorCode::Failed, "executor sent a message larger than " +
                                               std::to_string(kMaxMessage) + " bytes");
        }
        out.message.append(buf.data() + 1, static_cast<std::size_t>(n) - 1);
        if (buf[0] == kLast) {
            out.status = ReceiveStatus::Message;
            return out;
        }
    }
}

} // namespace overlay::protocol
