// The kernel's mount-identity interfaces that Debian 12's linux-libc-dev
// (6.1) does not declare: statmount/listmount (Linux 6.8, sb_source 6.13)
// and fanotify's mount-namespace events (6.15). Layouts and numbers are the
// kernel's uapi (include/uapi/linux/mount.h, fanotify.h); each use checks
// at run time that the running kernel has it.
#pragma once

#include <cstdint>
#include <linux/types.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace overlay::kernel {

#if defined(__x86_64__) || defined(__aarch64__) || defined(__riscv) || defined(__i386__) ||        \
    defined(__arm__) || defined(__powerpc__) || defined(__s390__) || defined(__loongarch__)
// The same number on every architecture that uses the common syscall table.
inline constexpr long kSysStatmount = 457;
inline constexpr long kSysListmount = 458;
#else
#error "statmount/listmount syscall numbers unknown for this architecture"
#endif

inline constexpr std::uint32_t kMntIdReqSizeVer0 = 24;

struct MntIdReq {
    __u32 size;
    __u32 spare;
    __u64 mnt_id;
    __u64 param;
};

// struct statmount of Linux 6.18 (512 bytes before the strings).
struct Statmount {
    __u32 size;
    __u32 mnt_opts;
    __u64 mask;
    __u32 sb_dev_major;
    __u32 sb_dev_minor;
    __u64 sb_magic;
    __u32 sb_flags;
    __u32 fs_type;
    __u64 mnt_id;
    __u64 mnt_parent_id;
    __u32 mnt_id_old;
    __u32 mnt_parent_id_old;
    __u64 mnt_attr;
    __u64 mnt_propagation;
    __u64 mnt_peer_group;
    __u64 mnt_master;
    __u64 propagate_from;
    __u32 mnt_root;
    __u32 mnt_point;
    __u64 mnt_ns_id;
    __u32 fs_subtype;
    __u32 sb_source;
    __u32 opt_num;
    __u32 opt_array;
    __u32 opt_sec_num;
    __u32 opt_sec_array;
    __u64 supported_mask;
    __u32 mnt_uidmap_num;
    __u32 mnt_uidmap;
    __u32 mnt_gidmap_num;
    __u32 mnt_gidmap;
    __u64 spare2[43];
    // char str[]: the strings follow; the offsets above index them.
};
static_assert(sizeof(Statmount) == 512);

// The string at offset `at` of the strings after `sm`.
inline const char* statmount_string(const Statmount& sm, __u32 at) {
    return reinterpret_cast<const char*>(&sm + 1) + at;
}

inline constexpr __u64 kStatmountSbBasic = 0x1;
inline constexpr __u64 kStatmountMntBasic = 0x2;
inline constexpr __u64 kStatmountMntPoint = 0x10;
inline constexpr __u64 kStatmountFsType = 0x20;
inline constexpr __u64 kStatmountMntOpts = 0x80;
inline constexpr __u64 kStatmountSbSource = 0x200;

inline constexpr __u64 kLsmtRoot = ~__u64{0};

inline constexpr unsigned kStatxMntIdUnique = 0x4000;
inline constexpr unsigned long kOverlayfsSuperMagic = 0x794c7630;

// fanotify mount events (Linux 6.15).
inline constexpr unsigned kFanReportMnt = 0x00004000;
inline constexpr unsigned kFanMarkMntns = 0x00000110;
inline constexpr __u64 kFanMntAttach = 0x01000000;
inline constexpr __u64 kFanMntDetach = 0x02000000;
inline constexpr __u8 kFanEventInfoTypeMnt = 7;

struct FanotifyEventInfoMnt {
    __u8 info_type;
    __u8 pad;
    __u16 len;
    __u64 mnt_id;
};

inline long statmount(__u64 mnt_id, __u64 mask, Statmount* buf, std::size_t size) {
    MntIdReq req{kMntIdReqSizeVer0, 0, mnt_id, mask};
    return ::syscall(kSysStatmount, &req, buf, size, 0);
}

inline long listmount(__u64 mnt_id, __u64 last_id, std::uint64_t* ids, std::size_t count) {
    MntIdReq req{kMntIdReqSizeVer0, 0, mnt_id, last_id};
    return ::syscall(kSysListmount, &req, ids, count, 0);
}

} // namespace overlay::kernel
