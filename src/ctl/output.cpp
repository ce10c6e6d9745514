#include "output.hpp"

#include "json.hpp"

#include <algorithm>
#include <cstdio>

namespace overlay::ctl {

std::string printable(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f || c == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", byte);
            out += buf;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string format_status_text(const InstanceStatus& status) {
    // Labels right-aligned on the colon, as hostnamectl and udisksctl do.
    std::string out = " Instance: " + printable(status.instance) + "\n" +
                      "  Mounted: " + (status.mounted ? "yes" : "no") + "\n" +
                      "   Merged: " + printable(status.merged) + "\n";
    if (status.lowerdirs.empty()) {
        out += "Lowerdirs: -\n";
    }
    for (std::size_t i = 0; i < status.lowerdirs.size(); ++i) {
        out += (i == 0 ? "Lowerdirs: " : "           ") + printable(status.lowerdirs[i]) + "\n";
    }
    return out;
}

std::string format_status_json(const InstanceStatus& status) {
    std::string out = "{\"instance\":" + json_string(status.instance) +
                      ",\"mounted\":" + (status.mounted ? "true" : "false") +
                      ",\"merged\":" + json_string(status.merged) + ",\"lowerdirs\":[";
    for (std::size_t i = 0; i < status.lowerdirs.size(); ++i) {
        out += (i == 0 ? "" : ",") + json_string(status.lowerdirs[i]);
    }
    return out + "]}\n";
}

std::string format_list_text(const InstanceList& list) {
    std::size_t width = 4; // "NAME"
    for (const auto& entry : list) {
        width = std::max(width, entry.first.size());
    }
    auto row = [&](const std::string& name, const char* mounted) {
        return printable(name) + std::string(width - name.size() + 2, ' ') + mounted + "\n";
    };
    std::string out = row("NAME", "MOUNTED");
    for (const auto& [name, mounted] : list) {
        out += row(name, mounted ? "yes" : "no");
    }
    return out;
}

std::string format_list_json(const InstanceList& list) {
    std::string out = "[";
    for (std::size_t i = 0; i < list.size(); ++i) {
        out += std::string(i == 0 ? "" : ",") + "{\"name\":" + json_string(list[i].first) +
               ",\"mounted\":" + (list[i].second ? "true" : "false") + "}";
    }
    return out + "]\n";
}

} // namespace overlay::ctl
