// The one closed list of failures the core can report. Every layer above
// (drop-in command, result record, D-Bus service) maps exactly these names,
// so a caller sees the same name whichever way it reached the core.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace overlay {

enum class ErrorCode {
    InvalidName,
    NoSuchInstance,
    BadConfig,
    LowerdirNotAllowed,
    UnsafePath,
    UpperdirTainted,
    AlreadyMounted,
    NotMounted,
    Busy,
    Failed,
};

// "InvalidName", ... exactly as in the D-Bus error names after
// "org.left4me.Overlay1.Error.".
std::string_view error_name(ErrorCode code) noexcept;
std::optional<ErrorCode> error_code_from_name(std::string_view name) noexcept;

// The core reports failures only by throwing this (chosen once: exceptions,
// no result types). what() is one line naming instance, path and reason.
class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

  private:
    ErrorCode code_;
};

// "CONTEXT: strerror(err)"; used for syscalls that failed.
[[noreturn]] void throw_errno(ErrorCode code, const std::string& context, int err);

// Bytes from hostile files and paths go into messages, logs and D-Bus
// strings (which must be valid UTF-8): every byte outside printable ASCII,
// and the backslash, becomes \xNN, so a message is always one safe line.
std::string printable(std::string_view bytes);

// "instance NAME: ": the one way a message says which instance it is about
// (the name is valid by then, but goes through printable() all the same).
std::string instance_context(std::string_view name);

// printable() of at most the first max_bytes bytes, with "...(N bytes)"
// when cut: for words from a command line, which can be megabytes.
inline constexpr std::size_t kMaxShownBytes = 80;
std::string printable_bounded(std::string_view bytes, std::size_t max_bytes = kMaxShownBytes);

} // namespace overlay
