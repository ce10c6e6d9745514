// The host's mount table as the service sees it: every mount by its id,
// its superblock's device, type, source and where it is now. Instance
// overlays are known by their source, "left4me:NAME", and by mount id,
// never by the path they were mounted on: the instance's owner can rename a
// mount point from a mount namespace of its own (where it is no mount
// point), and the overlay moves with it.
//
// Two ways to read it, picked at run time (Config::mount_table):
// - statmount/listmount (Linux 6.8; the mount source since 6.13): ids are
//   the kernel's unique 64-bit mount ids (never reused), one mount is
//   asked about without reading the rest, and listing costs one syscall
//   per mount, no text to parse;
// - /proc/self/mountinfo on older kernels: ids are the reusable ones
//   mountinfo shows, and every question reads the whole table.
// Ids of the two kinds are never mixed: an fd's id is asked of statx in the
// kind the table uses.
#pragma once

#include "config.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace overlay {

inline constexpr std::string_view kSourcePrefix = "left4me:";

enum class MountTableKind { Statmount, Mountinfo };

struct MountFacts {
    std::uint64_t id = 0;     // of the table's kind
    std::uint64_t device = 0; // the superblock's (makedev): a bind mount shares it
    std::string fs_type;
    std::string source;
    std::string mount_point;   // where it is now, seen from the current root
    std::string super_options; // the file system's options (mount_by_id only)
};

// Auto resolved once per process against the running kernel.
MountTableKind mount_table_kind(const Config& config);
// Why mount_table_kind() is Mountinfo ("listmount: Function not
// implemented", "MountTable=mountinfo", ...); empty when it is Statmount.
std::string mountinfo_reason(const Config& config);
// Asks the kernel now (Auto asks once): empty when the statmount table
// works in this process, else the failing call and its errno text. A
// seccomp filter that predates statmount/listmount fails them (with its
// error number: EPERM for the unit, ENOSYS for systemd-nspawn's) on a
// kernel that has them.
std::string statmount_unusable_reason();
const char* mount_table_name(MountTableKind kind);

// The id of the mount `fd` lies on, of the table's kind. Throws
// Error(Failed) naming `what`.
std::uint64_t mount_id_of(MountTableKind kind, int fd, std::string_view what);
// That id when fd is the root of a mount, nullopt otherwise.
std::optional<std::uint64_t> mount_root_id_of(MountTableKind kind, int fd, std::string_view what);

// The mount with that id in the current namespace, nullopt once it is gone.
std::optional<MountFacts> mount_by_id(MountTableKind kind, std::uint64_t id);

// NAME when the mount is an overlay with source "left4me:NAME" (a valid
// instance name): one of the service's overlays, or a bind of one.
std::optional<std::string_view> instance_of(const MountFacts& mount);

// Every mount of the instance's overlays in the current namespace, by id.
std::vector<MountFacts> overlays_of(MountTableKind kind, std::string_view name);

// The same for every instance at once: one pass over the table.
std::map<std::string, std::vector<MountFacts>> all_instance_overlays(MountTableKind kind);

// "the overlay of instance NAME at PATH" or "a mount (type T, source S) at PATH".
std::string describe_mount(const MountFacts& mount);

} // namespace overlay
