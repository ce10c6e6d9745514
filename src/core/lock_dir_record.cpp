#include "lock_dir_record.hpp"

#include <charconv>

namespace overlay {

std::string format_lock_dir_record(const LockDirRecord& record) {
    return record.instance + " " + std::to_string(record.mount_id) + " " +
           std::to_string(record.device) + " " + mount_table_name(record.kind) + "\n";
}

std::optional<LockDirRecord> parse_lock_dir_record(std::string_view line) {
    if (!line.ends_with('\n')) {
        return std::nullopt;
    }
    line.remove_suffix(1);
    std::string_view field[4];
    for (int i = 0; i < 4; ++i) {
        const auto sp = line.find(' ');
        // A space after each of the first three fields, none in the last.
        if ((sp == std::string_view::npos) != (i == 3)) {
            return std::nullopt;
        }
        field[i] = line.substr(0, sp);
        line.remove_prefix(sp == std::string_view::npos ? line.size() : sp + 1);
    }
    const auto mount_id = parse_decimal(field[1]);
    const auto device = parse_decimal(field[2]);
    if (!mount_id || !device) {
        return std::nullopt;
    }
    LockDirRecord record{std::string(field[0]), *mount_id, *device, MountTableKind::Statmount};
    if (field[3] == mount_table_name(MountTableKind::Statmount)) {
        record.kind = MountTableKind::Statmount;
    } else if (field[3] == mount_table_name(MountTableKind::Mountinfo)) {
        record.kind = MountTableKind::Mountinfo;
    } else {
        return std::nullopt;
    }
    return record;
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return value;
}

} // namespace overlay
