// One message at a time over a SOCK_SEQPACKET socket between the daemon and
// an executor. A record can be far larger than one packet (a status of 500
// escaped lowerdirs; a listing of thousands of instances), so each message
// travels as packets whose first byte says whether more follow: '+' more,
// '.' last. Packet boundaries are kept by the socket, so a message can never
// run into the next one.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace overlay::protocol {

// Messages beyond this are refused (the old per-call record limit).
inline constexpr std::size_t kMaxMessage = 16 * 1024 * 1024;

enum class ReceiveStatus { Message, Closed, TimedOut };

struct Received {
    ReceiveStatus status = ReceiveStatus::Closed;
    std::string message;
};

// Sends one whole message; false when the peer is gone (EPIPE, ECONNRESET).
// Other failures throw overlay::Error(Failed). MSG_NOSIGNAL: never SIGPIPE.
bool send_message(int fd, std::string_view message);

// Receives one whole message. timeout: nullopt waits forever; it bounds the
// wait for each packet, and a peer that stops half way is timed out like one
// that never starts. A malformed or oversized message throws Error(Failed).
Received receive_message(int fd, std::optional<std::chrono::milliseconds> timeout);

} // namespace overlay::protocol
