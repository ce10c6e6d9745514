#include "output.hpp"

#include "json.hpp"

#include <algorithm>
#include <cstdio>

namespace overlay::ctl {

namespace {

void escape_byte(std::string& out, unsigned char byte) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
}

// Length of the valid UTF-8 sequence at text[i] encoding a printable code
// point (not C1), or 0.
std::size_t printable_utf8_length(std::string_view text, std::size_t i) {
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = at(i);
    std::size_t len = 0;
    char32_t cp = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
        len = 2;
        cp = lead & 0x1fU;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        len = 3;
        cp = lead & 0x0fU;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        len = 4;
        cp = lead & 0x07U;
    } else {
        return 0;
    }
    if (i + len > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        if ((at(i + k) & 0xc0U) != 0x80U) {
            return 0;
        }
        cp = (cp << 6) | (at(i + k) & 0x3fU);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    const bool c1 = cp >= 0x80 && cp <= 0x9f;
    if (overlong || surrogate || c1 || cp > 0x10ffff) {
        return 0;
    }
    return len;
}

} // namespace

std::string terminal_safe(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte >= 0x20 && byte < 0x7f) {
            out.push_back(static_cast<char>(byte));
            ++i;
        } else if (std::size_t len = byte >= 0x80 ? printable_utf8_length(text, i) : 0) {
            out.append(text.substr(i, len));
            i += len;
        } else {
            escape_byte(out, byte);
            ++i;
        }
    }
    return out;
}

std::string format_status_text(const InstanceStatus& status) {
    // Labels right-aligned on the colon, as hostnamectl and udisksctl do.
    std::string out = " Instance: " + terminal_safe(status.instance) + "\n" +
                      "  Mounted: " + (status.mounted ? "yes" : "no") + "\n" +
                      "   Merged: " + terminal_safe(status.merged) + "\n";
    if (status.lowerdirs.empty()) {
        out += "Lowerdirs: -\n";
    }
    for (std::size_t i = 0; i < status.lowerdirs.size(); ++i) {
        out += (i == 0 ? "Lowerdirs: " : "           ") + terminal_safe(status.lowerdirs[i]) + "\n";
    }
    return out;
}

std::string format_status_json(const InstanceStatus& status, bool pretty) {
    if (!pretty) {
        std::string out = "{\"instance\":" + json_string(status.instance) +
                          ",\"mounted\":" + (status.mounted ? "true" : "false") +
                          ",\"merged\":" + json_string(status.merged) + ",\"lowerdirs\":[";
        for (std::size_t i = 0; i < status.lowerdirs.size(); ++i) {
            out += (i == 0 ? "" : ",") + json_string(status.lowerdirs[i]);
        }
        return out + "]}\n";
    }
    std::string out = "{\n  \"instance\": " + json_string(status.instance) +
                      ",\n  \"mounted\": " + (status.mounted ? "true" : "false") +
                      ",\n  \"merged\": " + json_string(status.merged) + ",\n  \"lowerdirs\": [";
    for (std::size_t i = 0; i < status.lowerdirs.size(); ++i) {
        out += (i == 0 ? "\n    " : ",\n    ") + json_string(status.lowerdirs[i]);
    }
    return out + (status.lowerdirs.empty() ? "]\n}\n" : "\n  ]\n}\n");
}

std::string format_list_text(const InstanceList& list, bool legend) {
    // Columns are aligned on what is printed (names escaped).
    std::vector<std::string> shown;
    shown.reserve(list.size());
    std::size_t width = legend ? 4 : 0; // "NAME"
    for (const auto& entry : list) {
        shown.push_back(terminal_safe(entry.first));
        width = std::max(width, shown.back().size());
    }
    auto row = [&](const std::string& name, const char* mounted) {
        return name + std::string(width - name.size() + 2, ' ') + mounted + "\n";
    };
    std::string out = legend ? row("NAME", "MOUNTED") : std::string();
    std::size_t i = 0;
    for (const auto& entry : list) {
        out += row(shown[i++], entry.second ? "yes" : "no");
    }
    return out;
}

std::string format_list_json(const InstanceList& list, bool pretty) {
    const char* const sep = pretty ? "\n  " : "";
    const char* const colon = pretty ? ": " : ":";
    std::string out = "[";
    for (std::size_t i = 0; i < list.size(); ++i) {
        out += std::string(i == 0 ? "" : ",") + sep + "{\"name\"" + colon +
               json_string(list[i].first) + "," + (pretty ? " " : "") + "\"mounted\"" + colon +
               (list[i].second ? "true" : "false") + "}";
    }
    return out + (pretty && !list.empty() ? "\n]\n" : "]\n");
}

} // namespace overlay::ctl
