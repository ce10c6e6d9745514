#include "migrate_verify.hpp"

#include "migrate.hpp"
#include "overlay_mount.hpp"

#include <cstdio>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>

namespace overlay::migration {

namespace {

std::string describe(const Attr& a) {
    char buf[160];
    const char* type = S_ISDIR(a.mode)    ? "dir"
                       : S_ISREG(a.mode)  ? "file"
                       : S_ISLNK(a.mode)  ? "symlink"
                       : S_ISFIFO(a.mode) ? "fifo"
                       : S_ISCHR(a.mode)  ? "chardev"
                       : S_ISBLK(a.mode)  ? "blockdev"
                                          : "socket";
    std::snprintf(buf, sizeof buf, "%s %04o %u:%u", type, static_cast<unsigned>(a.mode & 07777),
                  static_cast<unsigned>(a.uid), static_cast<unsigned>(a.gid));
    std::string out = buf;
    if (!S_ISDIR(a.mode)) {
        out += " size " + std::to_string(a.size);
    }
    if (S_ISLNK(a.mode)) {
        out += " -> " + printable(a.link);
    }
    return out;
}

// Every difference between the two views, described by the path in the
// merged view and, for what fuse-overlayfs showed, the layer it came from.
// `differs`: the upper's files whose data the kernel's walk found different.
std::vector<std::string> compare_views(const View& fuse, const View& kernel,
                                       const std::set<std::string>& differs,
                                       const std::vector<std::string>& layers) {
    std::vector<std::string> diffs;
    auto at = [](const std::string& rel) { return "merged /" + printable(rel) + ": "; };
    auto fuse_showed = [&](const Attr& a) {
        return "fuse-overlayfs showed " + describe(a) + " (from " +
               (a.layer < layers.size() ? printable(layers[a.layer]) : std::string("?")) + ")";
    };
    auto fi = fuse.begin();
    auto ki = kernel.begin();
    while (fi != fuse.end() || ki != kernel.end()) {
        if (ki == kernel.end() || (fi != fuse.end() && fi->first < ki->first)) {
            diffs.push_back(at(fi->first) + fuse_showed(fi->second) + ", the kernel shows nothing");
            ++fi;
            continue;
        }
        if (fi == fuse.end() || ki->first < fi->first) {
            diffs.push_back(at(ki->first) + "the kernel shows " + describe(ki->second) +
                            ", fuse-overlayfs showed nothing");
            ++ki;
            continue;
        }
        const Attr& f = fi->second;
        const Attr& k = ki->second;
        bool same = f.mode == k.mode && f.uid == k.uid && f.gid == k.gid && f.link == k.link;
        if (same && !S_ISDIR(f.mode)) {
            same = f.size == k.size;
        }
        if (same && (S_ISCHR(f.mode) || S_ISBLK(f.mode))) {
            same = f.rdev == k.rdev;
        }
        if (same && S_ISREG(f.mode)) {
            same = f.mtime_sec == k.mtime_sec && f.mtime_nsec == k.mtime_nsec;
            // Files of the upper are compared by their data (during the
            // kernel view's walk); files of the lowers (shared, possibly
            // many gigabytes) by size and mtime.
            if (same && f.layer == 0 && differs.contains(fi->first)) {
                diffs.push_back(at(fi->first) + "contents differ");
                ++fi;
                ++ki;
                continue;
            }
        }
        if (!same) {
            diffs.push_back(at(fi->first) + fuse_showed(f) + ", the kernel shows " + describe(k));
        }
        ++fi;
        ++ki;
    }
    return diffs;
}

} // namespace

void verify_conversion(const View& expected, const std::vector<int>& layers,
                       const std::vector<std::string>& layer_names, const Config& config,
                       const Refuser& r, std::string_view instance) {
    const UniqueFd mnt = mount_read_only_view(layers, "left4me-migrate-verify", config,
                                              r.prefix() + "verification mount");
    std::set<std::string> differs;
    const View actual =
        kernel_view(UniqueFd(::openat(mnt.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
                    mount_identity(mnt.get(), "view"), r, expected, layers.front(), differs);
    auto diffs = compare_views(expected, actual, differs, layer_names);
    if (!diffs.empty()) {
        set_marker(layers.front(), kMarkerVerifyFailed, r);
        // One line: the first few differences, and how many in all.
        const std::string shown = first_few(diffs, "; ", "; and ");
        throw Error(ErrorCode::UpperdirTainted,
                    instance_context(instance) + "migrate: verification failed, " +
                        count(diffs.size(), "difference", "differences") +
                        " between what fuse-overlayfs showed and what the kernel shows: " + shown +
                        "; the instance stays refused");
    }
}

} // namespace overlay::migration
