#include "json.hpp"

#include <cstdio>

namespace overlay::ctl {

std::string json_string(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        // DEL and the C1 controls (U+0080..U+009F, UTF-8 0xc2 0x80..0x9f)
        // are legal in JSON strings, but some terminals obey them (0x9b is
        // CSI): escaped, so that JSON shown on a terminal cannot drive it.
        const auto byte = static_cast<unsigned char>(c);
        if (byte == 0x7f) {
            out += "\\u007f";
            continue;
        }
        if (byte == 0xc2 && i + 1 < text.size()) {
            const auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", next);
                out += buf;
                ++i;
                continue;
            }
        }
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            // RFC 8259 forbids raw U+0000..U+001F in strings; bytes >= 0x80
            // are parts of UTF-8 sequences and stay as they are.
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
                out += buf;
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
    return out;
}

} // namespace overlay::ctl
