// The line the LockDir's records of instance overlays are made of, "NAME ID
// DEVICE KIND\n": NAME.mounts (the overlay Mount made) and DEV:INO.use
// (which overlay uses an upper or work) hold one, NAME.seen (the ids the
// watcher knows) one per overlay. One format and one parser for all three,
// so that every writer and reader agrees on the id-kind rule: the id is of
// the writer's table kind, and the daemon's executors may read the table
// one way (a sandbox whose seccomp filter predates statmount) and the sudo
// drop-in the other. An id of one kind means nothing to the other (a
// reusable mountinfo id handed to statmount is EINVAL, a unique id looked
// up in mountinfo is never found), so each line names its kind and a reader
// never takes an id of the other kind for one of its own.
#pragma once

#include "mount_table.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace overlay {

struct LockDirRecord {
    std::string instance;
    std::uint64_t mount_id = 0; // of `kind`
    std::uint64_t device = 0;   // the overlay's superblock: what both kinds agree on
    MountTableKind kind = MountTableKind::Statmount;

    bool operator==(const LockDirRecord&) const = default;
};

// "NAME ID DEVICE KIND\n", KIND being mount_table_name(kind).
std::string format_lock_dir_record(const LockDirRecord& record);

// One line as format_lock_dir_record() writes it, its '\n' included: four
// fields with one space between them, ID and DEVICE decimal, KIND one of
// the table names. nullopt for anything else (a reader takes it for a stale
// or foreign record). NAME is not checked here: a reader compares it with
// the instance it asks about.
std::optional<LockDirRecord> parse_lock_dir_record(std::string_view line);

// A decimal number that is all of `text`: digits only (no sign, space or
// prefix), within std::uint64_t.
std::optional<std::uint64_t> parse_decimal(std::string_view text);

} // namespace overlay
