#include "error.hpp"

#include <array>
#include <cstring>

namespace overlay {

namespace {
// Every code once, for the reverse lookup; the size check below and the
// switch in error_name() (built with -Werror=switch) keep it complete.
constexpr std::array kAllCodes{
    ErrorCode::InvalidName,    ErrorCode::NoSuchInstance,
    ErrorCode::BadConfig,      ErrorCode::LowerdirNotAllowed,
    ErrorCode::UnsafePath,     ErrorCode::UpperdirTainted,
    ErrorCode::AlreadyMounted, ErrorCode::NotMounted,
    ErrorCode::Busy,           ErrorCode::Failed,
};
static_assert(kAllCodes.size() == static_cast<std::size_t>(ErrorCode::Failed) + 1,
              "kAllCodes must list every ErrorCode");
} // namespace

std::string_view error_name(ErrorCode code) noexcept {
    switch (code) {
    case ErrorCode::InvalidName:
        return "InvalidName";
    case ErrorCode::NoSuchInstance:
        return "NoSuchInstance";
    case ErrorCode::BadConfig:
        return "BadConfig";
    case ErrorCode::LowerdirNotAllowed:
        return "LowerdirNotAllowed";
    case ErrorCode::UnsafePath:
        return "UnsafePath";
    case ErrorCode::UpperdirTainted:
        return "UpperdirTainted";
    case ErrorCode::AlreadyMounted:
        return "AlreadyMounted";
    case ErrorCode::NotMounted:
        return "NotMounted";
    case ErrorCode::Busy:
        return "Busy";
    case ErrorCode::Failed:
        return "Failed";
    }
    return "Failed"; // a value outside the enum: fail closed
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) noexcept {
    for (ErrorCode code : kAllCodes) {
        if (error_name(code) == name) {
            return code;
        }
    }
    return std::nullopt;
}

void throw_errno(ErrorCode code, const std::string& context, int err) {
    throw Error(code, context + ": " + std::strerror(err));
}

std::string printable(std::string_view bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size());
    for (unsigned char c : bytes) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xf]);
        }
    }
    return out;
}

std::string instance_context(std::string_view name) {
    return "instance " + printable(name) + ": ";
}

std::string printable_bounded(std::string_view bytes, std::size_t max_bytes) {
    if (bytes.size() <= max_bytes) {
        return printable(bytes);
    }
    return printable(bytes.substr(0, max_bytes)) + "...(" + std::to_string(bytes.size()) +
           " bytes)";
}

} // namespace overlay
