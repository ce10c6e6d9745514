#include "error.hpp"

#include <array>
#include <cstring>
#include <utility>

namespace overlay {

namespace {
constexpr std::array<std::pair<ErrorCode, std::string_view>, 10> kNames{{
    {ErrorCode::InvalidName, "InvalidName"},
    {ErrorCode::NoSuchInstance, "NoSuchInstance"},
    {ErrorCode::BadConfig, "BadConfig"},
    {ErrorCode::LowerdirNotAllowed, "LowerdirNotAllowed"},
    {ErrorCode::UnsafePath, "UnsafePath"},
    {ErrorCode::UpperdirTainted, "UpperdirTainted"},
    {ErrorCode::AlreadyMounted, "AlreadyMounted"},
    {ErrorCode::NotMounted, "NotMounted"},
    {ErrorCode::Busy, "Busy"},
    {ErrorCode::Failed, "Failed"},
}};
} // namespace

std::string_view error_name(ErrorCode code) noexcept {
    for (const auto& [c, name] : kNames) {
        if (c == code) {
            return name;
        }
    }
    return "Failed";
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) noexcept {
    for (const auto& [c, n] : kNames) {
        if (n == name) {
            return c;
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

} // namespace overlay
