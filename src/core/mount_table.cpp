#include "mount_table.hpp"

#include "error.hpp"
#include "instance_name.hpp"
#include "kernel_mount_api.hpp"
#include "mountinfo.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace overlay {

namespace {

// Room for a mount point of PATH_MAX and a source; grown on EOVERFLOW.
constexpr std::size_t kStatBufferBytes = 16 * 1024;

struct StatBuffer {
    std::unique_ptr<std::uint64_t[]> words;
    std::size_t bytes = 0;
    kernel::Statmount* get() { return reinterpret_cast<kernel::Statmount*>(words.get()); }
    void grow(std::size_t to) {
        words = std::make_unique<std::uint64_t[]>(to / 8);
        bytes = to;
    }
};

StatBuffer& stat_buffer() {
    thread_local StatBuffer buffer;
    if (!buffer.words) {
        buffer.grow(kStatBufferBytes);
    }
    return buffer;
}

// statmount into the thread's buffer; nullptr when the mount is gone.
kernel::Statmount* stat_mount(std::uint64_t id, std::uint64_t mask) {
    auto& buffer = stat_buffer();
    for (;;) {
        if (kernel::statmount(id, mask, buffer.get(), buffer.bytes) == 0) {
            return buffer.get();
        }
        if (errno == EOVERFLOW && buffer.bytes < 1024 * 1024) {
            buffer.grow(buffer.bytes * 4);
            continue;
        }
        if (errno == ENOENT) {
            return nullptr;
        }
        throw_errno(ErrorCode::Failed, "statmount of mount " + std::to_string(id), errno);
    }
}

constexpr std::uint64_t kFullMask = kernel::kStatmountSbBasic | kernel::kStatmountMntBasic |
                                    kernel::kStatmountMntPoint | kernel::kStatmountFsType |
                                    kernel::kStatmountSbSource;

MountFacts facts_of(const kernel::Statmount& sm) {
    MountFacts f;
    f.id = sm.mnt_id;
    f.device = ::makedev(sm.sb_dev_major, sm.sb_dev_minor);
    f.fs_type =
        (sm.mask & kernel::kStatmountFsType) ? kernel::statmount_string(sm, sm.fs_type) : "";
    f.source =
        (sm.mask & kernel::kStatmountSbSource) ? kernel::statmount_string(sm, sm.sb_source) : "";
    f.mount_point =
        (sm.mask & kernel::kStatmountMntPoint) ? kernel::statmount_string(sm, sm.mnt_point) : "";
    f.super_options =
        (sm.mask & kernel::kStatmountMntOpts) ? kernel::statmount_string(sm, sm.mnt_opts) : "";
    return f;
}

MountFacts facts_of(const MountEntry& e) {
    return MountFacts{e.mount_id, e.device, e.fs_type, e.source, e.mount_point, e.super_options};
}

// Every mount id of the current namespace, in the kernel's (creation) order.
std::vector<std::uint64_t> list_mount_ids() {
    std::vector<std::uint64_t> ids;
    constexpr std::size_t kBatch = 1024;
    std::uint64_t last = 0;
    for (;;) {
        const std::size_t at = ids.size();
        ids.resize(at + kBatch);
        const long n = kernel::listmount(kernel::kLsmtRoot, last, ids.data() + at, kBatch);
        if (n < 0) {
            throw_errno(ErrorCode::Failed, "listmount", errno);
        }
        ids.resize(at + static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < kBatch) {
            return ids;
        }
        last = ids.back();
    }
}

bool is_overlay_magic(const kernel::Statmount& sm) {
    return sm.sb_magic == kernel::kOverlayfsSuperMagic;
}

// Calls f(MountFacts) for each overlay of an instance in the namespace;
// the cheap superblock question first, the strings only for overlays.
template <typename F> void for_each_instance_overlay(MountTableKind kind, F&& f) {
    if (kind == MountTableKind::Mountinfo) {
        for (const auto& entry : read_mountinfo(::getpid())) {
            auto facts = facts_of(entry);
            if (instance_of(facts)) {
                f(std::move(facts));
            }
        }
        return;
    }
    for (const auto id : list_mount_ids()) {
        const auto* basic = stat_mount(id, kernel::kStatmountSbBasic);
        if (basic == nullptr || !is_overlay_magic(*basic)) {
            continue;
        }
        const auto* full = stat_mount(id, kFullMask);
        if (full == nullptr) {
            continue;
        }
        auto facts = facts_of(*full);
        if (instance_of(facts)) {
            f(std::move(facts));
        }
    }
}

} // namespace

std::string statmount_unusable_reason() {
    std::uint64_t id = 0;
    if (kernel::listmount(kernel::kLsmtRoot, 0, &id, 1) != 1) {
        return std::string("listmount: ") + std::strerror(errno);
    }
    auto& buffer = stat_buffer();
    if (kernel::statmount(id, kFullMask, buffer.get(), buffer.bytes) != 0) {
        return std::string("statmount: ") + std::strerror(errno);
    }
    if ((buffer.get()->mask & kFullMask) != kFullMask) {
        return "statmount reports no mount source (Linux 6.13)";
    }
    struct statx stx {};
    if (::statx(AT_FDCWD, "/", 0, kernel::kStatxMntIdUnique, &stx) != 0) {
        return std::string("statx: ") + std::strerror(errno);
    }
    if ((stx.stx_mask & kernel::kStatxMntIdUnique) == 0) {
        return "statx reports no unique mount id";
    }
    return {};
}

namespace {

struct TableChoice {
    MountTableKind kind;
    std::string why_not_statmount;
};

const TableChoice& detected_table() {
    static const TableChoice choice = [] {
        auto why = statmount_unusable_reason();
        return TableChoice{why.empty() ? MountTableKind::Statmount : MountTableKind::Mountinfo,
                           std::move(why)};
    }();
    return choice;
}

struct statx statx_of(MountTableKind kind, int fd, std::string_view what) {
    struct statx stx {};
    const unsigned mask =
        kind == MountTableKind::Statmount ? kernel::kStatxMntIdUnique : STATX_MNT_ID;
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, mask, &stx) != 0) {
        throw_errno(ErrorCode::Failed, "statx " + printable(what), errno);
    }
    if ((stx.stx_mask & mask) == 0) {
        throw Error(ErrorCode::Failed, "statx " + printable(what) + ": the kernel reports no " +
                                           (kind == MountTableKind::Statmount ? "unique " : "") +
                                           "mount id");
    }
    return stx;
}

} // namespace

MountTableKind mount_table_kind(const Config& config) {
    switch (config.mount_table) {
    case MountTableApi::Statmount:
        return MountTableKind::Statmount;
    case MountTableApi::Mountinfo:
        return MountTableKind::Mountinfo;
    case MountTableApi::Auto:
        break;
    }
    return detected_table().kind;
}

std::string mountinfo_reason(const Config& config) {
    switch (config.mount_table) {
    case MountTableApi::Statmount:
        return {};
    case MountTableApi::Mountinfo:
        return "MountTable=mountinfo";
    case MountTableApi::Auto:
        break;
    }
    return detected_table().why_not_statmount;
}

const char* mount_table_name(MountTableKind kind) {
    return kind == MountTableKind::Statmount ? "statmount" : "mountinfo";
}

std::uint64_t mount_id_of(MountTableKind kind, int fd, std::string_view what) {
    return statx_of(kind, fd, what).stx_mnt_id;
}

std::optional<std::uint64_t> mount_root_id_of(MountTableKind kind, int fd, std::string_view what) {
    const auto stx = statx_of(kind, fd, what);
    if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) {
        throw Error(ErrorCode::Failed, "the kernel does not report STATX_ATTR_MOUNT_ROOT");
    }
    if (!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        return std::nullopt;
    }
    return stx.stx_mnt_id;
}

std::optional<MountFacts> mount_by_id(MountTableKind kind, std::uint64_t id) {
    if (kind == MountTableKind::Statmount) {
        // The options (Linux 6.11) tell whose FUSE mount it is.
        const auto* sm = stat_mount(id, kFullMask | kernel::kStatmountMntOpts);
        if (sm == nullptr) {
            return std::nullopt;
        }
        return facts_of(*sm);
    }
    for (const auto& entry : read_mountinfo(::getpid())) {
        if (entry.mount_id == id) {
            return facts_of(entry);
        }
    }
    return std::nullopt;
}

std::optional<std::string_view> instance_of(const MountFacts& mount) {
    const std::string_view source = mount.source;
    if (mount.fs_type != "overlay" || !source.starts_with(kSourcePrefix)) {
        return std::nullopt;
    }
    const auto name = source.substr(kSourcePrefix.size());
    if (!is_valid_instance_name(name)) {
        return std::nullopt;
    }
    return name;
}

std::vector<MountFacts> overlays_of(MountTableKind kind, std::string_view name) {
    std::vector<MountFacts> out;
    for_each_instance_overlay(kind, [&](MountFacts facts) {
        if (*instance_of(facts) == name) {
            out.push_back(std::move(facts));
        }
    });
    return out;
}

std::map<std::string, std::vector<MountFacts>> all_instance_overlays(MountTableKind kind) {
    std::map<std::string, std::vector<MountFacts>> out;
    for_each_instance_overlay(kind, [&](MountFacts facts) {
        std::string name(*instance_of(facts));
        out[name].push_back(std::move(facts));
    });
    return out;
}

std::string describe_mount(const MountFacts& mount) {
    if (auto name = instance_of(mount)) {
        return "the overlay of instance " + std::string(*name) + " at " +
               printable(mount.mount_point);
    }
    return "a mount (type " + printable(mount.fs_type) + ", source " + printable(mount.source) +
           ") at " + printable(mount.mount_point);
}

} // namespace overlay
